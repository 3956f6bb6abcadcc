package idemdir

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// Two stores on one directory (two instances) see each other's claims and
// results; an expired claim is taken over; a released one is free again.
func TestStore_ClaimsAndResultsAreShared(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Open(dir)
	ctx := context.Background()
	if _, st, err := a.Claim(ctx, "k", time.Now().Add(time.Minute)); err != nil || st != idempotency.Claimed {
		t.Fatalf("first claim: %v, %v", st, err)
	}
	if _, st, _ := b.Claim(ctx, "k", time.Now().Add(time.Minute)); st != idempotency.Busy {
		t.Fatalf("claim held by the other instance: %v, want busy", st)
	}
	if err := a.Complete(ctx, "k", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if res, st, _ := b.Claim(ctx, "k", time.Now().Add(time.Minute)); st != idempotency.Done || string(res) != `{"n":1}` {
		t.Fatalf("after completion: %v %s", st, res)
	}

	if _, st, _ := a.Claim(ctx, "stale", time.Now().Add(-time.Second)); st != idempotency.Claimed {
		t.Fatal("claim of a new key refused")
	}
	if _, st, _ := b.Claim(ctx, "stale", time.Now().Add(time.Minute)); st != idempotency.Claimed {
		t.Fatalf("expired claim not taken over: %v", st)
	}
	if err := b.Release(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := a.Claim(ctx, "stale", time.Now().Add(time.Minute)); st != idempotency.Claimed {
		t.Fatalf("released key: %v, want claimable", st)
	}
}

// A late Release — an attempt that resumed after a retry took its claim
// over and completed — leaves the recorded result alone.
func TestStore_ReleaseKeepsACompletedResult(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, st, _ := s.Claim(ctx, "k", time.Now().Add(time.Minute)); st != idempotency.Claimed {
		t.Fatalf("claim: %v", st)
	}
	if err := s.Complete(ctx, "k", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if res, st, _ := s.Claim(ctx, "k", time.Now().Add(time.Minute)); st != idempotency.Done || string(res) != `{"n":1}` {
		t.Fatalf("after a late release: %v %s, want the result", st, res)
	}
}
