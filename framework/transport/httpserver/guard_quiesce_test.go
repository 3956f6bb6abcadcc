package httpserver

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestGuard_QuiesceIsAtMostHalfTheDrainAndAtMost5s: docs/lifecycle.md
// ("The HTTP drain") says the wait for kept-alive callers to leave is at
// most 5 s and at most half of --drain-timeout, and comes out of it. Here
// callers never go quiet (a request begins every 20 ms), so only those
// bounds end the wait: with 6 s for the drain it must end with about 3 s
// left for the calls in flight, with 30 s about 25 s. The margins (1 s and
// 5 s) are for a loaded machine; the bounds' mutants leave 1 s and 15 s.
func TestGuard_QuiesceIsAtMostHalfTheDrainAndAtMost5s(t *testing.T) {
	s, err := New(http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	s.lastActive.Store(time.Now().UnixNano()) // active from the start
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a caller that never goes quiet; owned by this test
		defer close(done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			s.lastActive.Store(time.Now().UnixNano())
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	defer func() { close(stop); <-done }()

	for _, c := range []struct {
		drain, minLeft time.Duration
	}{
		{6 * time.Second, 2 * time.Second},   // half: 3 s left
		{30 * time.Second, 20 * time.Second}, // 5 s cap: 25 s left
	} {
		ctx, cancel := context.WithTimeout(context.Background(), c.drain)
		s.quiesce(ctx)
		dl, _ := ctx.Deadline()
		left := time.Until(dl)
		cancel()
		if left < c.minLeft {
			t.Errorf("drain timeout %s: the wait for callers to leave ended with %s left; want at least %s (at most half of it, and at most 5s)",
				c.drain, left.Round(time.Millisecond), c.minLeft)
		}
	}
}
