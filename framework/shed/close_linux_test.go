package shed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/openfds"
)

// epollSets counts the process's open epoll descriptors: the Go runtime's
// own poller, and one per Limiter with the waiting signal on.
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

// tracked is how many connections the waiting signal holds on to.
func tracked(l *Limiter) int {
	l.wait.mu.Lock()
	defer l.wait.mu.Unlock()
	return len(l.wait.idle)
}

// noGC keeps the garbage collector, and so the epoll file's finalizer,
// from closing a leaked descriptor while the test counts them.
func noGC(t *testing.T) {
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// Close releases the waiting signal's epoll set at once, not when the
// garbage collector finds the Limiter; twice is fine. Before, Limiter had
// no Close and the descriptor lived until a finalizer ran.
func TestLimiter_CloseReleasesTheWaitingSignalsEpollSet(t *testing.T) {
	noGC(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the runtime's own poller exists before the count
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	before := epollSets(t)
	l := mustNew(t, WithWaitingTarget(1, 0))
	if n := epollSets(t); n != before+1 {
		t.Fatalf("%d epoll sets with the waiting signal on, want %d (one more than before New)", n, before+1)
	}
	for i := range 2 {
		if err := l.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
		if n := epollSets(t); n != before {
			t.Fatalf("after Close #%d: %d epoll sets, want %d, as before New", i+1, n, before)
		}
	}
	if err := mustNew(t).Close(); err != nil { // no signal, nothing held
		t.Fatalf("Close of a Limiter without the waiting signal: %v", err)
	}
}

// An armed signal with requests still waiting neither refuses nor
// reports a count once closed; connections reported after Close are
// not kept; the in-flight limit goes on deciding.
func TestLimiter_ClosedWaitingSignalCountsNothingAndNeverRefuses(t *testing.T) {
	clk := newFakeClock()
	const persist = 100 * time.Millisecond
	l := mustNew(t, WithClock(clk.Now), WithWaitingTarget(1, persist), WithLimits(10, 10, 10))
	servers, callers := idleConns(t, l, runtime.GOMAXPROCS(0)+1)
	acquire(t, l, Admitted, "no request waiting")
	clk.Add(waitEvery)
	send(t, callers, servers)
	refusedOnceItLasts(t, l, clk, persist, "the queue")

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Refusing || st.Waiting != 0 || st.Conns != 0 {
		t.Fatalf("closed: stats %+v, want not refusing, none waiting, no connections", st)
	}
	acquire(t, l, Admitted, "closed, the queue still there")
	clk.Add(waitEvery)
	acquire(t, l, Admitted, "closed, at the next reading")
	s2, _ := idleConns(t, l, 2) // StateNew after Close
	if n := tracked(l); n != 0 {
		t.Fatalf("closed: %d connections reported new after Close are tracked, want none", n)
	}
	for _, s := range append(servers, s2...) {
		l.ConnState(s, http.StateIdle)
		l.ConnState(s, http.StateHijacked)
		l.ConnState(s, http.StateClosed)
	}
	clk.Add(waitEvery)
	acquire(t, l, Admitted, "closed, connections reported after Close")
	if n := tracked(l); n != 0 {
		t.Fatalf("closed: %d connections tracked, want none", n)
	}
	// The in-flight limit still binds.
	var toks []Token
	for range 10 {
		tok, why := l.Acquire()
		if why != Admitted {
			t.Fatalf("closed: Acquire under the limit = %q", why)
		}
		toks = append(toks, tok)
	}
	if _, why := l.Acquire(); why != ReasonLimit {
		t.Fatalf("closed: Acquire past the limit = %q, want %q", why, ReasonLimit)
	}
	for _, tok := range toks {
		tok.Release()
	}
}

// Close comes while a real server admits requests and reports new and
// closing connections (run with -race): every request is still answered,
// nothing panics, the set is released, and no connection stays tracked.
func TestLimiter_CloseWhileTheServerServes(t *testing.T) {
	noGC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	before := epollSets(t)
	l := mustNew(t, WithWaitingTarget(64, 0)) // 8 callers never wait past it
	mw, err := Middleware(l)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })),
		ConnState:         l.ConnState,
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()

	// Each caller opens a connection per request, so ConnState's new and
	// closed connections keep coming while Close runs.
	const callers, perCaller = 8, 60
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, Timeout: 20 * time.Second}
	defer cl.CloseIdleConnections()
	url := "http://" + ln.Addr().String() + "/x"
	var (
		wg      sync.WaitGroup
		errsMu  sync.Mutex
		errs    []error
		started = make(chan struct{}, callers*perCaller)
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perCaller {
				if ctx.Err() != nil {
					return
				}
				started <- struct{}{}
				code, err := get(ctx, cl, url)
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("GET %s: %d", url, code)
				}
				if err != nil {
					errsMu.Lock()
					errs = append(errs, err)
					errsMu.Unlock()
				}
			}
		}()
	}
	for range callers * perCaller / 3 { // a third of the requests under way before Close
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("requests did not start within 60s")
		}
	}
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := l.Close(); err != nil {
				errsMu.Lock()
				errs = append(errs, fmt.Errorf("Close: %w", err))
				errsMu.Unlock()
			}
		}()
	}
	cwg.Wait()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := epollSets(t); n != before {
		t.Fatalf("closed: %d epoll sets, want %d, as before New", n, before)
	}
	if n := tracked(l); n != 0 {
		t.Fatalf("closed: %d connections tracked, want none", n)
	}
	if st := l.Stats(); st.Admitted != callers*perCaller {
		t.Fatalf("stats %+v: want all %d requests admitted", st, callers*perCaller)
	}
}
