package idemdir

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// A result is served for the retention after its call completed, then
// forgotten: the key runs again, and a sweep removes its file, stale
// temporary files and round-1 results (no expiry written) older than the
// retention, but no live claim.
func TestStore_ForgetsResultsAfterTheRetention(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithRetention(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	s.now = func() time.Time { return clock }
	ctx := context.Background()
	files := func() []string {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, de := range des {
			if de.Name() != ".lock" { // the lock file stays
				names = append(names, de.Name())
			}
		}
		return names
	}

	if _, st, _ := s.Claim(ctx, "long", clock.Add(10*time.Minute)); st != idempotency.Claimed {
		t.Fatalf("claim: %v", st)
	}
	if _, st, _ := s.Claim(ctx, "old", clock.Add(time.Second)); st != idempotency.Claimed {
		t.Fatalf("claim: %v", st)
	}
	if err := s.Complete(ctx, "old", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	// A result written before results expired, and a temporary file left
	// by a crash.
	if err := os.WriteFile(s.path("legacy"), []byte(`{"done":true,"result":{"n":2}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}

	clock = clock.Add(50 * time.Second)
	if res, st, _ := s.Claim(ctx, "old", clock.Add(time.Second)); st != idempotency.Done || string(res) != `{"n":1}` {
		t.Fatalf("within the retention: %v %s, want the result", st, res)
	}
	if n := len(files()); n != 4 {
		t.Fatalf("within the retention the sweep removed files: %v", files())
	}

	clock = clock.Add(11 * time.Second) // 61 s after the files were written
	if _, st, _ := s.Claim(ctx, "new", clock.Add(time.Second)); st != idempotency.Claimed {
		t.Fatalf("claim: %v", st)
	}
	want := []string{filepath.Base(s.path("long")), filepath.Base(s.path("new"))}
	slices.Sort(want)
	if got := files(); !slices.Equal(got, want) {
		t.Fatalf("after the retention the directory holds %v, want only the live claims %v", got, want)
	}
	if _, st, _ := s.Claim(ctx, "old", clock.Add(time.Second)); st != idempotency.Claimed {
		t.Fatalf("a key past its retention: %v, want claimable (the call runs again)", st)
	}
	// Between sweeps (the last was at this very time) Claim itself does
	// not serve a result past its retention.
	b, _ := json.Marshal(entry{Done: true, Until: clock.Add(-time.Second), Result: []byte(`{"n":3}`)})
	if err := os.WriteFile(s.path("between"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if res, st, _ := s.Claim(ctx, "between", clock.Add(time.Second)); st != idempotency.Claimed {
		t.Fatalf("a result past its retention before a sweep: %v %s, want claimable", st, res)
	}
}

func TestOpen_RefusesARetentionShorterThanAClaim(t *testing.T) {
	_, err := Open(t.TempDir(), WithRetention(time.Second))
	if err == nil || !strings.Contains(err.Error(), "claim TTL") {
		t.Fatalf("err = %v, want a retention shorter than the claim TTL refused", err)
	}
}
