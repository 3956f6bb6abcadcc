package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// observability.md: the debug listener "closes last, after the
// registration is released, so a scrape can follow a whole shutdown". A
// request held in flight keeps the App in its drain, after the
// withdrawal: the debug listener must still answer then, and be closed
// once Run has returned.
func TestRun_DebugListenerAnswersThroughTheShutdownAndClosesLast(t *testing.T) {
	srv := memory.NewServer()
	release := make(chan struct{})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	defer let()
	entered := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-time.After(time.Minute): // the test's own bound
			}
		}
		io.WriteString(w, `{"ok":true}`)
	})
	metricsH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") })
	a, err := New("svc", h, srv.Registry(), testOptions(&journal{}, WithDebugListener("127.0.0.1:0", metricsH),
		WithDrainTimeout(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := start(t, a, ctx)
	debugURL := "http://" + a.DebugAddr() + "/metrics"
	c := &http.Client{Timeout: 10 * time.Second}

	held := make(chan error, 1)
	go func() { // owned by the test: ends when release closes (or after a minute)
		resp, err := c.Get(a.Instance().Endpoints[0] + "/hold")
		if err == nil {
			resp.Body.Close()
		}
		held <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the held request did not reach the handler within 10s")
	}
	cancel() // shutdown: withdraw, grace (0), drain waits for /hold
	waitFor(t, "withdrawn from discovery", func() bool { return len(srv.Registry().Instances("svc")) == 0 })
	if got := status(t, c, debugURL); got != http.StatusOK {
		t.Fatalf("debug listener answered %d during the drain; want 200", got)
	}
	let()
	if err := <-held; err != nil {
		t.Fatalf("held request: %v", err)
	}
	wait(t, done)
	if resp, err := c.Get(debugURL); err == nil {
		resp.Body.Close()
		t.Fatalf("debug listener answered %d after Run returned; want it closed", resp.StatusCode)
	}
}

// The debug listener answers its own listen host (a name given to
// --debug-listen), beside IPs, localhost, the advertised host and the
// allowed names. Checked on the handler itself: binding to a name needs
// that name to resolve here.
func TestDebugHandler_AnswersItsListenHost(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	a, err := New("svc", okHandler(), memory.New(), testOptions(&journal{}, WithDebugListener("metrics.svc.internal:9100", ok))...)
	if err != nil {
		t.Fatal(err)
	}
	h := a.debugHandler("svc.internal")
	for host, want := range map[string]int{
		"metrics.svc.internal:9100": 200,
		"svc.internal":              200,
		"other.example":             421,
	} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
}

// closerFunc is an io.Closer of a function.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// The debug listener closes after the release too (docs/observability.md:
// "closes last, after the drain and the release"): a scrape still answers
// while the service's closers and the registry are being released. A
// closer of the service's own holds the release open here.
func TestRun_DebugListenerAnswersDuringTheRelease(t *testing.T) {
	srv := memory.NewServer()
	inRelease := make(chan struct{})
	goOn := make(chan struct{})
	var once sync.Once
	let := func() { once.Do(func() { close(goOn) }) }
	defer let()
	hold := closerFunc(func() error {
		close(inRelease)
		select {
		case <-goOn:
		case <-time.After(time.Minute): // the test's own bound
		}
		return nil
	})
	metricsH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") })
	a, err := New("svc", http.NotFoundHandler(), srv.Registry(), testOptions(&journal{}, WithDebugListener("127.0.0.1:0", metricsH),
		WithCloser(hold))...)
	if err != nil {
		t.Fatal(err)
	}
	a.opts.releaseTimeout = 2 * time.Minute // the closer, not the bound, ends the release here
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := start(t, a, ctx)
	debugURL := "http://" + a.DebugAddr() + "/metrics"
	c := &http.Client{Timeout: 10 * time.Second}
	cancel()
	select {
	case <-inRelease:
	case <-time.After(30 * time.Second):
		t.Fatal("the release did not reach the service's closer within 30s")
	}
	if got := status(t, c, debugURL); got != http.StatusOK {
		t.Fatalf("debug listener answered %d during the release; want 200", got)
	}
	let()
	wait(t, done)
	if resp, err := c.Get(debugURL); err == nil {
		resp.Body.Close()
		t.Fatalf("debug listener answered %d after Run returned; want it closed", resp.StatusCode)
	}
}
