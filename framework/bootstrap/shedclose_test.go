package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/internal/openfds"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// epollSets counts the process's open epoll descriptors: the Go runtime's
// own poller, and one per shed.Limiter with the waiting signal on.
func epollSets(t *testing.T) int {
	t.Helper()
	n, err := openfds.Count(openfds.Epoll)
	if errors.Is(err, openfds.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// epollSetsBackTo waits, within 5 s, for the count to be back to before
// (or under: a finalizer may close what an earlier test left).
func epollSetsBackTo(t *testing.T, before int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n := epollSets(t); n > before; n = epollSets(t) {
		if time.Now().After(deadline) {
			t.Errorf("%s: %d epoll sets open 5s after Run returned, want %d as before: the shedder's waiting signal was not closed", what, n, before)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noGC keeps the garbage collector, and so the epoll file's finalizer,
// from closing a leaked descriptor while the test counts them.
func noGC(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// A start-up that fails after the shedder was made, wherever it fails,
// leaves no epoll descriptor of the waiting signal open: before, Limiter
// had no Close and each such start left one to the garbage collector.
func TestRun_FailedStartClosesTheShedWaitingEpollSet(t *testing.T) {
	noGC(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0") // also starts the runtime's poller before the count
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	refused := func(ctx context.Context, d *Deps) (Transports, error) {
		d.AppOptions = append(d.AppOptions, app.WithWatchdog(0, 3)) // refused by app.New
		return hello(ctx, d)
	}
	failing := func(context.Context, *Deps) (Transports, error) { return Transports{}, fmt.Errorf("build refuses") }
	for _, tc := range []struct {
		name  string
		args  []string
		build BuildFunc
		want  string
	}{
		{"registry refuses", []string{"--toy-open-error", "refused", "--listen", "127.0.0.1:0"}, hello, "toy registry: refused"},
		{"build fails", []string{"--listen", "127.0.0.1:0"}, failing, "build refuses"},
		{"app refuses an option", []string{"--listen", "127.0.0.1:0"}, refused, "WithWatchdog"},
		{"port taken", []string{"--listen", taken.Addr().String()}, hello, "address already in use"},
	} {
		before := epollSets(t)
		args := append([]string{"--registry", "toy", "--grace", "0s", "--shed-waiting", "16"}, tc.args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // ends a start that wrongly succeeds
		var out syncbuf.Buffer
		code := Run(ctx, "svc", "1", args, &out, tc.build, toys)
		cancel()
		if code != 1 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s: exit %d, want 1 with %q:\n%s", tc.name, code, tc.want, out.String())
		}
		epollSetsBackTo(t, before, tc.name)
	}
}

// A normal stop closes the shedder after the drain: a request in flight
// while the drain waits for it still finds the waiting signal's epoll set
// open (the limiter is not closed under it), and once Run returns the set
// is gone.
func TestRun_StopClosesTheShedWaitingEpollSetAfterTheDrain(t *testing.T) {
	noGC(t)
	port := freePort(t) // also starts the runtime's poller before the count
	before := epollSets(t)
	out := &syncbuf.Buffer{}
	inHandler, openInDrain := make(chan struct{}), make(chan int, 1)
	build := func(ctx context.Context, d *Deps) (Transports, error) {
		return HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(inHandler)
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(out.String(), "phase=grace") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			openInDrain <- epollSets(t) // the drain waits for this request
			io.WriteString(w, "hi")
		})), nil
	}
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s", "--shed-waiting", "16",
		"--debug-listen", "127.0.0.1:0"} // the shedder's series are scraped from it until the end
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Run(ctx, "svc", "1", args, out, build, toys) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "phase=run") {
		if time.Now().After(deadline) {
			t.Fatalf("not running within 20s\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := epollSets(t); n < before+1 {
		t.Fatalf("running with --shed-waiting: %d epoll sets, want %d (one more than before)", n, before+1)
	}
	answered := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://127.0.0.1:" + port + "/hello")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("in-flight request: %s", resp.Status)
			}
		}
		answered <- err
	}()
	select {
	case <-inHandler:
	case <-time.After(20 * time.Second):
		t.Fatal("the request did not reach the handler within 20s")
	}
	cancel()
	select {
	case n := <-openInDrain:
		if n < before+1 {
			t.Errorf("during the drain: %d epoll sets, want %d: the shedder was closed before the drain ended", n, before+1)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler did not see the stop within 30s")
	}
	if err := <-answered; err != nil {
		t.Errorf("the request in flight at the stop: %v", err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("did not stop within 30s\n%s", out)
	}
	epollSetsBackTo(t, before, "after a normal stop")
}
