// Package downstream measures how long a request being served waits on
// calls to other services, so that the server's load shedder can leave
// that wait out of its latency signal (report j50a 1: order's in-flight
// limit fell from 200 to 21 while the users it calls were hung, and order
// refused a fifth of its own callers although it had CPU to spare). The
// shedder puts a Wait in the request's context; Warren's clients mark
// their calls on it. It has no dependencies, so a client that imports it
// pulls in no server code.
package downstream

import (
	"context"
	"sync"
	"time"
)

type key struct{}

// Wait is the time one request has spent waiting on calls to other
// services: the union of the calls' intervals, so calls made in parallel
// count once. It is safe for concurrent use.
type Wait struct {
	now func() time.Time

	mu     sync.Mutex
	active int
	since  time.Time // when active went from 0 to 1
	total  time.Duration
}

// waitCtx is a context carrying a Wait, in one allocation.
type waitCtx struct {
	context.Context
	w Wait
}

func (c *waitCtx) Value(k any) any {
	if k == (key{}) {
		return &c.w
	}
	return c.Context.Value(k)
}

// With returns ctx carrying a new Wait, which reads the clock now. It
// allocates once.
func With(ctx context.Context, now func() time.Time) (context.Context, *Wait) {
	c := &waitCtx{Context: ctx}
	c.w.now = now
	return c, &c.w
}

func nop() {}

// Begin notes that a call to another service starts under ctx and returns
// what notes its end (call it once). Without a Wait in ctx it does
// nothing.
func Begin(ctx context.Context) (end func()) {
	w, _ := ctx.Value(key{}).(*Wait)
	if w == nil {
		return nop
	}
	w.mu.Lock()
	if w.active == 0 {
		w.since = w.now()
	}
	w.active++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			if w.active--; w.active == 0 {
				w.total += w.now().Sub(w.since)
			}
			w.mu.Unlock()
		})
	}
}

// Total returns the time waited so far, counting calls still running up
// to now.
func (w *Wait) Total(now time.Time) time.Duration {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.total
	if w.active > 0 {
		t += now.Sub(w.since)
	}
	return t
}
