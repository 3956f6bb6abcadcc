package bootstrap

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The exit statuses Main documents (and docs/lifecycle.md, deploy tools
// and launchers rely on): the number itself, not only the name.
func TestExitWithdrawFailed_IsTheDocumentedThree(t *testing.T) {
	if ExitWithdrawFailed != 3 {
		t.Fatalf("ExitWithdrawFailed = %d, documented as 3", ExitWithdrawFailed)
	}
}

// orderCloser notes when it was closed, and what the service's log said by
// then.
type orderCloser struct {
	name   string
	mu     *sync.Mutex
	closed *[]string
	out    *syncbuf.Buffer
}

func (c orderCloser) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	drained := strings.Contains(c.out.String(), "phase=drain")
	*c.closed = append(*c.closed, c.name+map[bool]string{true: " after drain", false: " before drain"}[drained])
	return nil
}

// What a build function hands to OnClose is closed on a clean shutdown
// too (not only when start-up fails), after the drain, newest first.
func TestRun_OnCloseClosersCloseAfterTheDrainNewestFirst(t *testing.T) {
	out := &syncbuf.Buffer{}
	var mu sync.Mutex
	var closed []string
	build := func(ctx context.Context, d *Deps) (Transports, error) {
		d.OnClose(orderCloser{"first", &mu, &closed, out})
		d.OnClose(orderCloser{"second", &mu, &closed, out})
		return hello(ctx, d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, "svc", "1", []string{"--registry", "toy", "--listen", "127.0.0.1:0", "--grace", "0s"}, out, build, toys)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "phase=run ready=true") {
		select {
		case code := <-done:
			t.Fatalf("Run returned %d before ready:\n%s", code, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 20s:\n%s", out)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return within 30s:\n%s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(closed, ", "); got != "second after drain, first after drain" {
		t.Fatalf("closers: %q, want second then first, both after the drain", got)
	}
}

// The waiting signal's persistence is the setting docs/overload.md
// measured and --shed-waiting's help states (100 ms).
func TestShedWaitingPersist_IsTheDocumented100ms(t *testing.T) {
	if ShedWaitingPersist != 100*time.Millisecond {
		t.Fatalf("ShedWaitingPersist = %s, documented as 100ms", ShedWaitingPersist)
	}
}

// --client-attempt-timeout replaces the adaptive per-attempt deadline,
// which is capped at 2 s: with it set to 10 s, an instance answering in
// 3 s is waited for, where the adaptive deadline (the default) gives up
// on every attempt.
func TestClientOptions_AttemptTimeoutReplacesTheAdaptiveDeadline(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
			io.WriteString(w, "{}")
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	inst := registry.Instance{ID: "slow", Name: "callee", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", slow.Listener.Addr().(*net.TCPAddr).Port)}}
	call := func(attempt time.Duration) error {
		cfg := config.Default("caller", "")
		cfg.ClientAttemptTimeout = attempt
		d := &Deps{Config: cfg, Logger: log.NewNopLogger()}
		c := must(client.NewFromInstancer(sd.FixedInstancer{inst.String()}, "callee", d.ClientOptions()...))
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := client.Call[struct{}, struct{}](ctx, c, "GET", "/x", struct{}{})
		return err
	}
	if err := call(10 * time.Second); err != nil {
		t.Fatalf("with --client-attempt-timeout 10s, a 3s answer: %v", err)
	}
	if err := call(0); !errors.Is(err, retry.ErrAttemptTimeout) {
		t.Fatalf("with the adaptive deadline (2s at most), a 3s answer: %v, want a per-attempt timeout", err)
	}
}

// When the build succeeds but the App cannot be made of what it returned
// (here an option the build added is refused), the closers handed to
// OnClose are closed too, as after a failed build.
func TestRun_RefusedAppClosesWhatOnCloseGot(t *testing.T) {
	var closed []string
	build := func(ctx context.Context, d *Deps) (Transports, error) {
		d.OnClose(closerFunc(func() error { closed = append(closed, "dep"); return nil }))
		d.AppOptions = append(d.AppOptions, app.WithWatchdog(0, 3)) // refused by app.New
		return hello(ctx, d)
	}
	var out syncbuf.Buffer
	if code := Run(context.Background(), "svc", "1", []string{"--registry", "toy", "--listen", "127.0.0.1:0"}, &out, build, toys); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "WithWatchdog") {
		t.Fatalf("log lacks the refused option:\n%s", out.String())
	}
	if len(closed) != 1 {
		t.Fatalf("closed %v, want the OnClose closer closed once", closed)
	}
}
