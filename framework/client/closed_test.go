package client

import (
	"context"
	"errors"
	"testing"
)

// A call on a closed Client fails at once with ErrClosed: no attempt, no
// backoff, no retry budget spent (round 1 retried the empty balancer).
func TestClient_CallAfterCloseReturnsErrClosedAtOnce(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	if err := c.Invoke(context.Background(), "GET", "/x", nil, nil); err != nil {
		t.Fatalf("call before Close: %v", err)
	}
	hits := b.hits.Load()
	before := c.State()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	err := c.Invoke(context.Background(), "GET", "/x", nil, nil)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close = %v, want ErrClosed", err)
	}
	after := c.State()
	if after.Retries != before.Retries || after.RetriesRefused != before.RetriesRefused {
		t.Fatalf("call after Close spent retry budget: %+v -> %+v", before, after)
	}
	if b.hits.Load() != hits {
		t.Fatal("call after Close reached the backend")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
