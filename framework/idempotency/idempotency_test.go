package idempotency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/svcerr"
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

// A claim Do takes holds for DefaultClaimTTL (2 s, which docs/client.md
// says the client waits before asking again): another attempt within it
// is told ErrInProgress.
func TestDo_ClaimHoldsForTheTTL(t *testing.T) {
	if DefaultClaimTTL != 2*time.Second {
		t.Fatalf("DefaultClaimTTL %s; docs/client.md says 2s", DefaultClaimTTL)
	}
	s := NewMemoryStore(time.Minute)
	base := time.Now()
	now := base
	s.now = func() time.Time { return now }
	ctx := NewContext(context.Background(), "k")
	runs := 0
	var inner error
	_, err := Do(ctx, s, "Create", func(context.Context) (result, error) {
		runs++
		now = base.Add(DefaultClaimTTL - 100*time.Millisecond) // still within the claim
		_, inner = Do(ctx, s, "Create", func(context.Context) (result, error) { runs++; return result{}, nil })
		return result{N: 1}, nil
	})
	if err != nil || !errors.Is(inner, ErrInProgress) || runs != 1 {
		t.Fatalf("err %v, second attempt %v, runs %d; want ErrInProgress for the second and one run", err, inner, runs)
	}
}

// settleStore refuses writes once their context is done, as a database
// driver does.
type settleStore struct{ *MemoryStore }

func (s settleStore) Complete(ctx context.Context, key string, result []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.MemoryStore.Complete(ctx, key, result)
}

func (s settleStore) Release(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.MemoryStore.Release(ctx, key)
}

// The outcome is recorded even when the caller went away during fn: the
// effect happened, and the retry must get it rather than a second one.
func TestDo_OutcomeRecordedAfterTheCallerCancelled(t *testing.T) {
	s := settleStore{NewMemoryStore(time.Minute)}
	ctx, cancel := context.WithCancel(NewContext(context.Background(), "k"))
	runs := 0
	fn := func(context.Context) (result, error) { runs++; cancel(); return result{N: runs}, nil }
	if got, err := Do(ctx, s, "Create", fn); err != nil || got.N != 1 {
		t.Fatalf("first call = %+v, %v", got, err)
	}
	if got, err := Do(NewContext(context.Background(), "k"), s, "Create", fn); err != nil || got.N != 1 || runs != 1 {
		t.Fatalf("retry = %+v, %v after %d runs; want the first result, one run", got, err, runs)
	}
	// A failure is released under a cancelled caller too: the retry runs.
	ctx2, cancel2 := context.WithCancel(NewContext(context.Background(), "k2"))
	boom := errors.New("boom")
	if _, err := Do(ctx2, s, "Create", func(context.Context) (result, error) { cancel2(); return result{}, boom }); !errors.Is(err, boom) || errors.Is(err, context.Canceled) {
		t.Fatalf("failed call: err %v, want boom and a clean release", err)
	}
	if _, err := Do(NewContext(context.Background(), "k2"), s, "Create", fn); err != nil {
		t.Fatalf("retry after a failure under a cancelled caller: %v, want it run", err)
	}
}

func TestValid_KeyOfMaxLen(t *testing.T) {
	k := make([]byte, MaxLen)
	for i := range k {
		k[i] = 'a'
	}
	if !Valid(string(k)) {
		t.Fatalf("a key of MaxLen (%d) bytes refused", MaxLen)
	}
}

// NewMemoryStore keeps results at least a claim's TTL, however short the
// retention asked for: a retry within it gets the result.
func TestMemoryStore_KeepsResultsAtLeastTheClaimTTL(t *testing.T) {
	s := NewMemoryStore(0)
	now := time.Now()
	s.now = func() time.Time { return now }
	ctx := NewContext(context.Background(), "k")
	runs := 0
	fn := func(context.Context) (result, error) { runs++; return result{N: runs}, nil }
	Do(ctx, s, "Create", fn)
	now = now.Add(DefaultClaimTTL - time.Millisecond)
	if got, err := Do(ctx, s, "Create", fn); err != nil || got.N != 1 || runs != 1 {
		t.Fatalf("retry within the TTL = %+v, %v; want the saved result", got, err)
	}
}

// An expired claim can be taken over at once, not only after the next
// sweep; and expired entries are swept, so memory holds only the keys of
// the last retention period.
func TestMemoryStore_ExpiredEntriesAreTakenOverAndSwept(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	if _, st, _ := s.Claim(ctx, "a", now.Add(500*time.Millisecond)); st != Claimed {
		t.Fatalf("first claim: %v", st)
	}
	now = now.Add(600 * time.Millisecond) // past the claim, within a second of the last sweep
	if _, st, _ := s.Claim(ctx, "a", now.Add(time.Minute)); st != Claimed {
		t.Fatalf("claim over an expired one: %v, want Claimed", st)
	}
	s.Complete(ctx, "a", []byte("1"))
	s.Claim(ctx, "b", now.Add(time.Second))
	now = now.Add(2 * time.Minute)
	s.Claim(ctx, "c", now.Add(time.Second)) // sweeps a and b
	if n := s.Len(); n != 1 {
		t.Fatalf("%d entries after both expired, want 1 (the new claim)", n)
	}
}

// failingStore fails Claim or Complete with errStore, as a store whose
// database reset the connection.
type failingStore struct {
	*MemoryStore
	claim, complete bool
}

var errStore = errors.New("connection reset by peer")

func (s failingStore) Claim(ctx context.Context, key string, until time.Time) ([]byte, State, error) {
	if s.claim {
		return nil, Claimed, errStore
	}
	return s.MemoryStore.Claim(ctx, key, until)
}

func (s failingStore) Complete(ctx context.Context, key string, result []byte) error {
	if s.complete {
		return errStore
	}
	return s.MemoryStore.Complete(ctx, key, result)
}

// A store that cannot be read before fn runs answers svcerr.Unavailable
// (503, retried for a keyed call: nothing was applied), wrapping the
// store's error; a plain error answered 500, which no client retries
// (report j61b F1). The caller's own cancel stays what it is.
func TestDo_StoreFailureBeforeTheEffectIsRetryable(t *testing.T) {
	runs := 0
	fn := func(context.Context) (result, error) { runs++; return result{N: 1}, nil }
	_, err := Do(NewContext(context.Background(), "k"), failingStore{MemoryStore: NewMemoryStore(time.Minute), claim: true}, "Charge", fn)
	var se *svcerr.Error
	if !errors.As(err, &se) || se.Kind != svcerr.Unavailable || se.Code != CodeStoreUnavailable || !errors.Is(err, errStore) || runs != 0 {
		t.Fatalf("err %v (svcerr %+v), %d runs; want Unavailable %s wrapping the store's error, fn not run", err, se, runs, CodeStoreUnavailable)
	}
	ctx, cancel := context.WithCancel(NewContext(context.Background(), "k"))
	cancel()
	if _, err := Do(ctx, failingStore{MemoryStore: NewMemoryStore(time.Minute), claim: true}, "Charge", fn); errors.As(err, &se) {
		t.Fatalf("a cancelled caller's claim failure answered %v; want no svcerr (the caller went away)", err)
	}
}

// A store that cannot save the result after fn does not fail the call:
// the effect is made and its answer known (an error would have the
// caller apply it again under a new key, report j61b F1).
func TestDo_StoreFailureAfterTheEffectAnswersIt(t *testing.T) {
	got, err := Do(NewContext(context.Background(), "k"), failingStore{MemoryStore: NewMemoryStore(time.Minute), complete: true}, "Charge",
		func(context.Context) (result, error) { return result{N: 7}, nil })
	if err != nil || got.N != 7 {
		t.Fatalf("Do = %+v, %v; want the effect's answer {N:7}, no error", got, err)
	}
}
