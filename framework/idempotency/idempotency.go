// Package idempotency makes non-idempotent calls safe to retry.
//
// A Warren client sends one key per logical call (client.Keyed), the same
// on every attempt, in the Idempotency-Key header; the HTTP server puts it
// in the request's context (FromContext); the service wraps the effect in
// Do, backed by a Store in the service's own storage, so a retried attempt
// whose first try did reach the handler gets the first outcome instead of
// a second effect.
//
// The header name is the one net/http itself honours: a request that
// carries it is replayed by the transport when a reused keep-alive
// connection turns out to be closed before anything was read.
//
// Do records the outcome after the effect, in a second step, so a process
// stopped or killed between the two leaves an effect without its outcome,
// and a stopped one may resume after its expired claim was taken over.
// The effect closes that gap itself: fn writes EffectKey(ctx) with it, in
// the same atomic write, unique per key (or beside a field that is unique
// anyway), and a write that finds the key's effect already made answers
// that effect instead of applying a second one or failing. Then every
// execution of the key — the retry that took the claim over, the resumed
// first one — answers the same effect.
package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// Header carries the key between services.
const Header = "Idempotency-Key"

// MaxLen bounds a key accepted from a peer.
const MaxLen = 128

type (
	ctxKey     struct{}
	effectKey  struct{}
	attemptKey struct{}
)

// NewKey returns a fresh random key (16 bytes, hex).
func NewKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// EffectKey returns, inside the fn that Do runs, the key to store with the
// effect: the call's key scoped by op ("user.Create/<key>"). A call without
// a key has none. See the package comment for why the effect carries it.
func EffectKey(ctx context.Context) (string, bool) {
	k, ok := ctx.Value(effectKey{}).(string)
	return k, ok && k != ""
}

// Attempt is what Do tells a Store about the execution of Do calling it,
// in the context of Claim, Complete and Release (AttemptFrom). A Store of
// your own records it with the claim; one that ignores it still works,
// without the guards below.
type Attempt struct {
	// ID is unique per execution of Do. Release ends a claim only while it
	// is ID's: an execution that outlived its claim and then failed must
	// not free the claim of the execution that took it over — in the same
	// process too, where both share one Store — or a third would run
	// beside that one.
	ID string
	// Request is the digest of the call's request (Do's Request option),
	// "" without. Claim answers Reused, taking nothing, when the key is
	// claimed for another request, live or expired: a key reused while
	// its first call runs, or after that call's instance stopped inside
	// the handler, would otherwise run fn, which finds the first call's
	// effect by its EffectKey and answers it to the other request.
	Request string
}

// AttemptFrom returns, inside a Store method that Do calls, the attempt
// calling it. Outside Do there is none.
func AttemptFrom(ctx context.Context) (Attempt, bool) {
	a, ok := ctx.Value(attemptKey{}).(Attempt)
	return a, ok
}

// Valid reports whether a key received from a peer is usable: printable
// ASCII without spaces, 1 to MaxLen bytes.
func Valid(key string) bool {
	if key == "" || len(key) > MaxLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// State is what Claim found.
type State int

const (
	// Claimed: the key was new (or its claim had expired); the caller now
	// holds it and must Complete or Release it.
	Claimed State = iota
	// Done: the key's call finished; Claim returned its saved result.
	Done
	// Busy: another execution holds an unexpired claim on the key.
	Busy
	// Reused: the key is claimed, live or expired, for another request
	// than the caller's (Attempt.Request); nothing was taken. A Store that
	// does not record requests never answers it.
	Reused
)

// Store keeps the outcome of keyed calls. Implement it over the service's
// own storage (the database that holds the effect), so every instance of
// the service sees the same keys. MemoryStore serves a single instance;
// package etcdstore serves instances that share etcd.
type Store interface {
	// Claim atomically takes key until the given time unless it is Done
	// (then it returns the saved result), held by an unexpired claim, or
	// claimed for another request (Reused; see Attempt).
	Claim(ctx context.Context, key string, until time.Time) (result []byte, st State, err error)
	// Complete saves the result of key's call and ends the claim.
	Complete(ctx context.Context, key string, result []byte) error
	// Release gives the claim up without a result (the call failed), so a
	// retry runs it again; only the claim of the attempt releasing
	// (AttemptFrom(ctx)), not one another attempt took over meanwhile.
	Release(ctx context.Context, key string) error
}

// CodeInProgress is the code of ErrInProgress.
const CodeInProgress = "idempotency_key_in_progress"

// ErrInProgress is answered while another attempt of the same keyed call
// holds the key (HTTP 503 with code CodeInProgress). A Warren client
// retries it after DefaultClaimTTL, by when the first attempt has saved its
// result or its claim has expired, and does not count it against the
// instance.
var ErrInProgress = svcerr.New(svcerr.Unavailable, CodeInProgress, "a call with this idempotency key is in progress")

// DefaultClaimTTL is how long a claim holds before another attempt may
// take it over: longer than the method's handler takes, short enough that
// a caller's retry can wait it out when the instance holding it stopped
// mid-call (SIGSTOP, a hang). A handler still running after it runs beside
// the one that took the claim over, so the effect must be unique per
// EffectKey (see the package comment).
const DefaultClaimTTL = 2 * time.Second

// CodeStoreUnavailable is the code Do answers with (svcerr.Unavailable:
// HTTP 503, gRPC UNAVAILABLE, which a Warren client retries for a keyed
// call) when the Store cannot be read before fn runs: nothing was applied.
const CodeStoreUnavailable = "idempotency_store_unavailable"

// CodeKeyReused is the code of ErrKeyReused.
const CodeKeyReused = "idempotency_key_reused"

// ErrKeyReused is answered when a key comes back with another request
// than the one its result was saved for (Do with Request): HTTP 422, as
// the IETF's Idempotency-Key draft asks, gRPC FAILED_PRECONDITION. Not
// retried: the caller reused a key, or replayed one.
var ErrKeyReused = svcerr.New(svcerr.FailedPrecondition, CodeKeyReused, "this idempotency key was used with a different request")

// Option configures one Do.
type Option func(*doConfig)

type doConfig struct {
	request any
	digest  bool
}

// Request makes Do compare requests: the result is saved with a digest
// (SHA-256) of req's JSON encoding, and a later call with the same key
// and another request gets ErrKeyReused instead of the first call's
// result. Give it the method's request value, as the handler received it
// (before it normalises anything).
func Request(req any) Option {
	return func(c *doConfig) { c.request, c.digest = req, true }
}

// saved is a result saved with its request's digest (Request).
type saved struct {
	Request string          `json:"warren_request"`
	Result  json.RawMessage `json:"result"`
}

// Do runs fn once per key: a call without a key just runs fn; a call
// whose key is Done gets the saved result; one whose key is held gets
// ErrInProgress. A failed fn releases the key, so business errors are
// recomputed on a retry (they are deterministic) and transient ones get a
// new chance. op scopes the key (the method's name), so one key cannot
// return another method's result. Results are saved as JSON. fn's context
// carries EffectKey: a retry that takes over an expired claim runs fn
// again, so fn must find an effect already made under that key and answer
// it rather than apply it again.
//
// A Store that fails before fn runs makes Do answer svcerr.Unavailable
// (CodeStoreUnavailable): nothing was applied, and a Warren client retries
// a keyed call on it. One that fails to save the result after fn does not
// fail the call: the effect is made and its answer known. Nor does a
// result that JSON cannot encode: it is answered and not saved, and a
// retry runs fn again, which answers the effect found by its EffectKey.
//
// With Request(req) the request is compared too: a key sent again with a
// different request (a caller's bug, a replayed key) gets ErrKeyReused —
// once its result is saved, and, with a Store that records
// Attempt.Request (MemoryStore, etcdstore), while the first call holds
// the key or after its claim expired.
// Without it a key is taken for one logical call whatever the request —
// Warren's client makes one per call and sends it on each of that call's
// attempts only — and such a reuse gets the first call's result.
func Do[T any](ctx context.Context, s Store, op string, fn func(context.Context) (T, error), opts ...Option) (T, error) {
	var zero T
	key, ok := FromContext(ctx)
	if !ok {
		return fn(ctx)
	}
	key = op + "/" + key
	var cfg doConfig
	for _, o := range opts {
		o(&cfg)
	}
	digest := ""
	if cfg.digest {
		b, err := json.Marshal(cfg.request)
		if err != nil {
			return zero, fmt.Errorf("idempotency: digest of the request of %s: %w", key, err)
		}
		sum := sha256.Sum256(b)
		digest = hex.EncodeToString(sum[:])
	}
	// The store's calls carry this execution's identity; fn's context does
	// not, so a Do nested in fn gets its own.
	actx := context.WithValue(ctx, attemptKey{}, Attempt{ID: NewKey(), Request: digest})
	prev, st, err := s.Claim(actx, key, time.Now().Add(DefaultClaimTTL))
	switch {
	case err != nil && ctx.Err() != nil:
		return zero, fmt.Errorf("idempotency: claim %s: %w", key, err) // the caller's deadline or cancel
	case err != nil:
		// Nothing was applied: a retry may be, on any instance (report
		// j61b F1: a store reset answered 500, which no client retries).
		return zero, svcerr.Wrap(svcerr.Unavailable, CodeStoreUnavailable, "the idempotency store cannot be read; nothing was applied",
			fmt.Errorf("idempotency: claim %s: %w", key, err))
	case st == Busy:
		return zero, ErrInProgress
	case st == Reused:
		return zero, ErrKeyReused
	case st == Done:
		// A result saved with its request's digest (Request) is an
		// envelope; one saved without is the result itself.
		var env saved
		if json.Unmarshal(prev, &env) == nil && env.Request != "" && env.Result != nil {
			if digest != "" && env.Request != digest {
				return zero, ErrKeyReused
			}
			prev = env.Result
		}
		var out T
		if err := json.Unmarshal(prev, &out); err != nil {
			return zero, fmt.Errorf("idempotency: saved result of %s: %w", key, err)
		}
		return out, nil
	}
	out, err := fn(context.WithValue(ctx, effectKey{}, key))
	// The claim is settled even when the caller went away: the effect (or
	// its absence) is what a retry must see.
	sctx := context.WithoutCancel(actx)
	if err != nil {
		if rerr := s.Release(sctx, key); rerr != nil {
			return zero, errors.Join(err, fmt.Errorf("idempotency: release %s: %w", key, rerr))
		}
		return zero, err
	}
	b, err := json.Marshal(out)
	if err == nil && digest != "" {
		b, err = json.Marshal(saved{Request: digest, Result: b})
	}
	if err != nil {
		// A result JSON cannot hold (NaN, a func) is an answer not saved,
		// as when the store fails below: the effect is made, so answer it
		// rather than fail a call the caller would apply again. The claim
		// is released, so a retry runs fn at once, which finds the effect
		// by its EffectKey, instead of being told ErrInProgress until the
		// claim expires.
		_ = s.Release(sctx, key)
		return out, nil
	}
	// A result the store could not save does not fail the call: the
	// effect is made and its answer known. Answering an error would have
	// the caller apply it again under a new key (report j61b F1); a retry
	// of this key waits the claim out and fn finds the effect by its
	// EffectKey.
	_ = s.Complete(sctx, key, b)
	return out, nil
}
