package consul

import (
	"slices"
	"testing"
	"time"
)

// Each instance is held for one window from the answer that began holding
// it: a later trigger (an agent whose index goes back on every timed-out
// wait) must not renew it, or an instance that never comes back would be
// listed forever. One the agent lists again leaves, and a later trigger
// holds it afresh.
func TestHold_OneWindowPerInstance(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const w = 10 * time.Second
	h := hold{}
	h.add(listing{ids: []string{"a", "b"}, strs: []string{"A", "B"}}, t0.Add(w))
	// A trigger 5 s later, from an answer that listed b and c.
	h.add(listing{ids: []string{"b", "c"}, strs: []string{"B2", "C"}}, t0.Add(5*time.Second+w))
	if got := h["b"]; got.str != "B" || !got.until.Equal(t0.Add(w)) {
		t.Fatalf("b, already held, was renewed or rewritten: %+v", got)
	}
	if next, ok := h.next(); !ok || !next.Equal(t0.Add(w)) {
		t.Fatalf("next = %v, %v; want the first window's end", next, ok)
	}
	if h.expire(t0.Add(w - time.Nanosecond)) {
		t.Fatal("expired before its window ended")
	}
	if !h.expire(t0.Add(w)) || len(h) != 1 || h["c"].str != "C" {
		t.Fatalf("at the first window's end: %v; want only c left", h)
	}
	h.release([]string{"c"})
	if _, ok := h.next(); ok || h.expire(t0.Add(time.Hour)) {
		t.Fatalf("released, yet held: %v", h)
	}
	h.add(listing{ids: []string{"c"}, strs: []string{"C"}}, t0.Add(time.Minute))
	if !h["c"].until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("c, released, not held afresh: %+v", h["c"])
	}
	got := listing{ids: []string{"x"}, strs: []string{"X"}}.with(h)
	if !slices.Equal(got.ids, []string{"x", "c"}) || !slices.Equal(got.strs, []string{"X", "C"}) {
		t.Fatalf("with: %+v", got)
	}
}
