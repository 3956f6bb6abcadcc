package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// slowLedger is an endpoint that calls a dependency with the caller's
// context, as a service's method does: while hold is set it answers only
// when the context ends, with the error a Warren client returns then.
type slowLedger struct {
	hold     atomic.Bool
	entered  chan struct{}
	returned atomic.Int64
}

func (l *slowLedger) endpoint(ctx context.Context, _ any) (any, error) {
	defer l.returned.Add(1)
	if !l.hold.Load() {
		return "ok", nil
	}
	l.entered <- struct{}{}
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("client ledger: %w", ctx.Err())
	case <-time.After(time.Minute):
		return "ok", nil
	}
}

// Callers that give up (a caller shutting down, a hedge won elsewhere)
// say nothing about the endpoint: their calls, cut by the server when the
// connection closes, must not open the breaker. They counted as failures,
// so eight callers cancelling at once opened it for its whole Timeout,
// and the next caller, with a dependency that answers at once, got 503
// breaker_open.
func TestNew_CallersThatGiveUpDoNotOpenTheBreaker(t *testing.T) {
	ledger := &slowLedger{entered: make(chan struct{}, 16)}
	ledger.hold.Store(true)
	e := New(gobreaker.Settings{Name: "ledger", Timeout: time.Minute})(ledger.endpoint) // trips after 6 consecutive failures
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := e(r.Context(), nil); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, err.Error())
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	const callers = 8
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gone, leave := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(gone, http.MethodGet, srv.URL, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	for range callers {
		select {
		case <-ledger.entered:
		case <-ctx.Done():
			t.Fatal("the callers' requests did not reach the endpoint within 30s")
		}
	}
	leave() // every caller gives up
	wg.Wait()
	for ledger.returned.Load() < callers {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d cut calls returned within 30s", ledger.returned.Load(), callers)
		}
		time.Sleep(10 * time.Millisecond)
	}

	ledger.hold.Store(false)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("next call after %d callers gave up: %s %s, want 200 ok (the dependency answers)", callers, resp.Status, body)
	}
}

// A half-open breaker's probe whose caller gives up proves nothing
// either way: the breaker stays half-open for the next probe instead of
// going back to open for another Timeout.
func TestNew_HalfOpenProbeWhoseCallerGivesUpDoesNotReopen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var changes []string
	st := gobreaker.Settings{Name: "ledger", MaxRequests: 1, Timeout: 50 * time.Millisecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, from.String()+"→"+to.String())
		}}
	var down atomic.Bool
	down.Store(true)
	e := New(st)(func(ctx context.Context, _ any) (any, error) {
		if down.Load() {
			return nil, errors.New("ledger down")
		}
		<-ctx.Done() // the probe: its caller gives up
		return nil, fmt.Errorf("client ledger: %w", ctx.Err())
	})
	e(ctx, nil) // trips
	down.Store(false)
	// Once Timeout has passed, the next call is the probe.
	var probeErr error
	for {
		probe, give := context.WithCancel(ctx)
		go func() { time.Sleep(20 * time.Millisecond); give() }()
		_, probeErr = e(probe, nil)
		give()
		if errors.Is(probeErr, context.Canceled) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no call reached the endpoint as a probe within 20s: %v", probeErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(changes, ", "); got != "closed→open, open→half-open" {
		t.Fatalf("state changes: %s; want closed→open, open→half-open (a probe its caller cut must not reopen the breaker)", got)
	}
}

// A caller whose deadline passed still counts the call as a failure: the
// endpoint was too slow for it (a hung dependency must still open the
// breaker); only a caller that cancelled is left out.
func TestNew_CallersWhoseDeadlinePassedStillOpenTheBreaker(t *testing.T) {
	e := New(gobreaker.Settings{Name: "ledger", Timeout: time.Minute,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 }})(
		func(ctx context.Context, _ any) (any, error) {
			<-ctx.Done()
			return nil, fmt.Errorf("client ledger: %w", ctx.Err())
		})
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := e(ctx, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the deadline", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e(ctx, nil); err == nil || !strings.Contains(err.Error(), "open") {
		t.Fatalf("after 3 deadlines: err = %v, want the breaker open", err)
	}
}
