package balancer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/outlier"
)

// hungServer is a real HTTP server on loopback whose handler answers only
// when the request is given up (or the test ends).
func hungServer(t *testing.T) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv
}

// httpGet is an endpoint that sends a GET to url and fails on anything
// but a 2xx, as the client's transport does.
func httpGet(url string) func(context.Context, any) (any, error) {
	return func(ctx context.Context, _ any) (any, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return nil, errors.New(resp.Status)
		}
		return nil, nil
	}
}

// notCancelled is the client's rule for a call the caller cancelled: no
// failure of the instance.
func notCancelled(err error) bool { return !errors.Is(err, context.Canceled) }

// callCancelled calls tg and cancels the call once it is in flight.
func callCancelled(t *testing.T, tg *Target) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _, _ = tg.Call(ctx, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for tg.InFlight() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the request reach the server
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled call did not return within 10s")
	}
}

func callTimingOut(tg *Target) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _ = tg.Call(ctx, nil)
}

// A call the caller cancels says nothing of the instance: it neither
// counts against it nor, as an answer would, ends its run of failures.
// Before, it was recorded as a success: a caller giving up between two
// timeouts of a hung instance restarted the count, so callers that cancel
// kept a hung instance from ever being ejected.
func TestTarget_CancelledCallDoesNotResetTheTimeoutRun(t *testing.T) {
	srv := hungServer(t)
	d := must(outlier.New(outlier.WithCooldown(time.Hour, time.Hour), outlier.WithMaxEjectionPercent(100)))
	d.NewBreaker() // others in the set: the detector always leaves one in
	tg := NewCheckedTarget("hung", httpGet(srv.URL), WithBreaker(d.NewBreaker()), WithFailure(notCancelled))
	callTimingOut(tg)
	callCancelled(t, tg)
	callTimingOut(tg)
	if !tg.Ejected() {
		t.Fatalf("hung instance not ejected after two timeouts with a cancelled call between them (breaker %s)", tg.Breaker().State())
	}
}

// A half-open probe the caller cancels got no answer: it must not readmit
// the instance. Before, it was recorded as a success and put a hung
// instance back in rotation.
func TestTarget_CancelledProbeDoesNotReadmit(t *testing.T) {
	srv := hungServer(t)
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d := must(outlier.New(outlier.WithCooldown(time.Second, time.Second), outlier.WithMaxEjectionPercent(100),
		outlier.WithProbeTimeout(time.Hour), outlier.WithClock(clock)))
	d.NewBreaker()
	tg := NewCheckedTarget("hung", httpGet(srv.URL), WithBreaker(d.NewBreaker()), WithFailure(notCancelled))
	callTimingOut(tg)
	callTimingOut(tg)
	if !tg.Ejected() {
		t.Fatal("hung instance not ejected after two timeouts")
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if !tg.Allow() {
		t.Fatal("no probe after the cooldown")
	}
	callCancelled(t, tg)
	if st := tg.Breaker().State(); st == outlier.Closed {
		t.Fatal("a cancelled probe readmitted the hung instance")
	}
}
