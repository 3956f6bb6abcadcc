package idempotency

import (
	"context"
	"errors"
	"testing"
	"time"
)

type result struct{ N int }

func TestDo_RunsOncePerKeyAndReplaysTheResult(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	runs := 0
	fn := func(context.Context) (result, error) { runs++; return result{N: runs}, nil }
	ctx := NewContext(context.Background(), "k1")
	for range 3 {
		got, err := Do(ctx, s, "Create", fn)
		if err != nil || got.N != 1 {
			t.Fatalf("Do = %+v, %v; want the first result", got, err)
		}
	}
	if runs != 1 {
		t.Fatalf("fn ran %d times for one key", runs)
	}
	// Another op or another key runs again; no key runs every time.
	if got, _ := Do(ctx, s, "Other", fn); got.N != 2 {
		t.Fatalf("another op got %+v, want a fresh run", got)
	}
	if got, _ := Do(NewContext(context.Background(), "k2"), s, "Create", fn); got.N != 3 {
		t.Fatalf("another key got %+v, want a fresh run", got)
	}
	Do(context.Background(), s, "Create", fn)
	Do(context.Background(), s, "Create", fn)
	if runs != 5 {
		t.Fatalf("calls without a key ran %d times in all, want 5", runs)
	}
}

func TestDo_FailureReleasesTheKey(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	ctx := NewContext(context.Background(), "k")
	boom := errors.New("boom")
	if _, err := Do(ctx, s, "Create", func(context.Context) (result, error) { return result{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	got, err := Do(ctx, s, "Create", func(context.Context) (result, error) { return result{N: 7}, nil })
	if err != nil || got.N != 7 {
		t.Fatalf("retry after a failure = %+v, %v; want it run", got, err)
	}
}

func TestDo_ConcurrentAttemptIsToldInProgressUntilClaimExpires(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	ctx := NewContext(context.Background(), "k")
	if _, st, _ := s.Claim(ctx, "Create/k", now.Add(DefaultClaimTTL)); st != Claimed {
		t.Fatalf("first claim: %v", st)
	}
	_, err := Do(ctx, s, "Create", func(context.Context) (result, error) { return result{}, nil })
	if !errors.Is(err, ErrInProgress) {
		t.Fatalf("second attempt while the first runs: %v, want ErrInProgress", err)
	}
	now = now.Add(DefaultClaimTTL) // the first attempt's instance stopped mid-call
	if _, err := Do(ctx, s, "Create", func(context.Context) (result, error) { return result{N: 1}, nil }); err != nil {
		t.Fatalf("after the claim expired: %v", err)
	}
}

func TestValid(t *testing.T) {
	for k, want := range map[string]bool{"": false, "abc-123": true, "a b": false, string(make([]byte, MaxLen+1)): false, NewKey(): true} {
		if Valid(k) != want {
			t.Errorf("Valid(%q) = %v", k, !want)
		}
	}
}

// fn sees the key to store with its effect, scoped by op, only when the
// call is keyed.
func TestDo_GivesFnTheEffectKeyOfKeyedCallsOnly(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	effectKey := func(ctx context.Context) (string, error) {
		k, ok := EffectKey(ctx)
		if !ok {
			return "none", nil
		}
		return k, nil
	}
	if got, _ := Do(NewContext(context.Background(), "k1"), s, "user.Create", effectKey); got != "user.Create/k1" {
		t.Fatalf("keyed call: EffectKey = %q, want user.Create/k1", got)
	}
	if got, _ := Do(context.Background(), s, "user.Create", effectKey); got != "none" {
		t.Fatalf("call without a key: EffectKey = %q, want none", got)
	}
	if _, ok := EffectKey(NewContext(context.Background(), "k1")); ok {
		t.Fatal("EffectKey outside Do's fn")
	}
}

// With Request, a key that comes back with another request is refused
// (ErrKeyReused, 422 on HTTP) rather than answered with the first call's
// result; the same request still gets it, and a result saved without a
// digest (before Request was given, or by a call without it) is answered
// as before.
func TestDo_RequestRefusesAKeyReusedWithAnotherRequest(t *testing.T) {
	type req struct{ Email string }
	s := NewMemoryStore(time.Minute)
	runs := 0
	fn := func(context.Context) (result, error) { runs++; return result{N: runs}, nil }
	ctx := NewContext(context.Background(), "k1")
	if got, err := Do(ctx, s, "Create", fn, Request(req{"a@x"})); err != nil || got.N != 1 {
		t.Fatalf("first call = %+v, %v", got, err)
	}
	if got, err := Do(ctx, s, "Create", fn, Request(req{"a@x"})); err != nil || got.N != 1 {
		t.Fatalf("same key, same request = %+v, %v; want the saved result", got, err)
	}
	_, err := Do(ctx, s, "Create", fn, Request(req{"b@x"}))
	if !errors.Is(err, ErrKeyReused) {
		t.Fatalf("same key, another request: err = %v, want ErrKeyReused", err)
	}
	if runs != 1 {
		t.Fatalf("fn ran %d times", runs)
	}
	// A caller that does not compare still gets the saved result.
	if got, err := Do(ctx, s, "Create", fn); err != nil || got.N != 1 {
		t.Fatalf("without Request = %+v, %v; want the saved result", got, err)
	}
	// A result saved without a digest is answered to a call with one.
	ctx2 := NewContext(context.Background(), "k2")
	if got, err := Do(ctx2, s, "Create", fn); err != nil || got.N != 2 {
		t.Fatalf("k2 first call = %+v, %v", got, err)
	}
	if got, err := Do(ctx2, s, "Create", fn, Request(req{"c@x"})); err != nil || got.N != 2 {
		t.Fatalf("k2 with Request over a plain saved result = %+v, %v", got, err)
	}
	// A request that cannot be encoded is an error, and runs nothing.
	if _, err := Do(NewContext(context.Background(), "k3"), s, "Create", fn, Request(make(chan int))); err == nil || runs != 2 {
		t.Fatalf("unencodable request: err = %v, runs %d", err, runs)
	}
}
