package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// phaseTimes is a logger that notes when each phase line was logged.
type phaseTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (p *phaseTimes) Log(kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "phase" {
			p.mu.Lock()
			if p.at == nil {
				p.at = map[string]time.Time{}
			}
			p.at[fmt.Sprint(kv[i+1])] = time.Now()
			p.mu.Unlock()
		}
	}
	return nil
}

func (p *phaseTimes) get(phase string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at[phase]
}

// The grace period lasts as long as configured: from the end of the
// withdrawal to the drain, the listener stays open that long. 2.5 s is
// above DefaultGracePeriod, so a default used in its place fails too.
// (Only a lower bound: a timer never fires early, a loaded machine may
// fire it late.)
func TestShutdown_GraceLastsItsConfiguredLength(t *testing.T) {
	const grace = 2500 * time.Millisecond
	pt := &phaseTimes{}
	a, err := New("svc", okHandler(), memory.New(),
		WithListen("127.0.0.1:0"), WithLogger(pt), WithGracePeriod(grace), WithSignals(false), WithSelfCheckTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	withdrawn, drained := pt.get("withdraw"), pt.get("drain")
	if withdrawn.IsZero() || drained.IsZero() {
		t.Fatalf("phases withdraw %v, drain %v not logged", withdrawn, drained)
	}
	if d := drained.Sub(withdrawn); d < grace {
		t.Fatalf("withdraw → drain took %s; want ≥ the configured grace %s", d, grace)
	}
}

// readyzProbe is a registry that asks the service's /readyz at the moment
// it is told to deregister.
type readyzProbe struct {
	*memory.Registry
	base   func() string
	mu     sync.Mutex
	status int
}

func (r *readyzProbe) Deregister(ctx context.Context, i registry.Instance) error {
	st := -1
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get(r.base() + "/readyz"); err == nil {
		resp.Body.Close()
		st = resp.StatusCode
	}
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	return r.Registry.Deregister(ctx, i)
}

// /readyz turns 503 before the deregistration starts, so a probe (a
// Kubernetes endpoint, a load balancer) and discovery never disagree in
// the direction that sends traffic to a leaving instance.
func TestShutdown_ReadyzIs503BeforeDeregistration(t *testing.T) {
	j := &journal{}
	var a *App
	reg := &readyzProbe{Registry: memory.New(), base: func() string { return a.Instance().Endpoints[0] }}
	a, err := New("svc", okHandler(), reg, testOptions(j)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz answered %d while the instance was being deregistered; want 503", reg.status)
	}
}

// A client that stopped sending its body does not hold the drain: with
// only such a client left, shutdown ends in time and Run returns nil (it
// waited out the drain timeout and failed before body limits). net/http's
// own refusals are JSON on the App's listener too.
func TestShutdown_AStalledBodyDoesNotHoldTheDrain(t *testing.T) {
	j := &journal{}
	mux := http.NewServeMux()
	entered := make(chan struct{}, 1)
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			httptransport.WriteError(w, err)
			return
		}
	})
	a, err := New("svc", mux, memory.New(), testOptions(j, WithDrainTimeout(20*time.Second), WithBodyTimeouts(2*time.Second, 500*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	addr := a.Instance().HostPort()

	big, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	big.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(big, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 80<<10))
	resp, err := http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("oversized headers: %d %s; want 431 JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	stalled, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprint(stalled, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nsome but not all")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the upload never reached its handler")
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run with only a stalled client left = %v; want nil", err)
	}
}
