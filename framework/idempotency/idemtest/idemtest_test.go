package idemtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/idempotency/idemtest"
)

// ledger is an effect written the way package idempotency asks: one entry
// per EffectKey, and a write that finds its key's entry answers it.
type ledger struct {
	mu      sync.Mutex
	entries []string
	byKey   map[string]string
}

func (l *ledger) add(ctx context.Context, entry string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := idempotency.EffectKey(ctx); ok {
		if e, ok := l.byKey[k]; ok {
			return e, nil
		}
		l.byKey[k] = entry
	}
	l.entries = append(l.entries, entry)
	return entry, nil
}

// Whether the first attempt stops before or after its effect, the attempt
// that takes its expired claim over and the resumed one answer the same
// entry, written once.
func TestTakeover_EffectUniquePerKeyGivesOneAnswer(t *testing.T) {
	for _, when := range []string{"before the write", "after the write"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			keys := idempotency.NewMemoryStore(time.Minute)
			l := &ledger{byKey: map[string]string{}}
			p := idemtest.NewPause()
			ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
			attempt := func(name string, stop bool) func() (string, error) {
				return func() (string, error) {
					return idempotency.Do(ctx, keys, "ledger.Add", func(ctx context.Context) (string, error) {
						if stop && when == "before the write" {
							p.Here()
						}
						e, err := l.add(ctx, name)
						if stop && when == "after the write" {
							p.Here()
						}
						return e, err
					})
				}
			}
			a := idemtest.Takeover(t, p, attempt("first", true), attempt("retry", false))
			if a.StoppedErr != nil || a.RetryErr != nil || a.Stopped != a.Retry {
				t.Fatalf("answers: stopped %q, %v; retry %q, %v; want one entry twice", a.Stopped, a.StoppedErr, a.Retry, a.RetryErr)
			}
			if len(l.entries) != 1 {
				t.Fatalf("entries %q, want one", l.entries)
			}
			again, err := attempt("third", false)()
			if err != nil || again != a.Retry {
				t.Fatalf("a later attempt = %q, %v; want the recorded %q", again, err, a.Retry)
			}
		})
	}
}
