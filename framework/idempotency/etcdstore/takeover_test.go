package etcdstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/idempotency/etcdstore"
	"github.com/warren-mesh/warren/framework/idempotency/idemtest"
)

// ledger is an effect written the way package idempotency asks: one entry
// per EffectKey, and a write that finds its key's entry answers it.
type ledger struct {
	mu      sync.Mutex
	entries []string
	byKey   map[string]string
}

func (l *ledger) add(ctx context.Context, entry string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := idempotency.EffectKey(ctx); ok {
		if e, ok := l.byKey[k]; ok {
			return e
		}
		l.byKey[k] = entry
	}
	l.entries = append(l.entries, entry)
	return entry
}

// pausedComplete is the stopped instance's store, stopping before it
// records the answer: the resumed attempt completes after the retry did.
type pausedComplete struct {
	*etcdstore.Store
	pause *idemtest.Pause
}

func (p pausedComplete) Complete(ctx context.Context, key string, result []byte) (err error) {
	p.pause.Around(false, func() { err = p.Store.Complete(ctx, key, result) })
	return err
}

// An attempt stopped before its write, after it, or before recording its
// answer, whose expired claim a retry on another instance takes over:
// both answer the one entry, written once, and a later attempt gets it
// from the store.
func TestTakeover_StoppedAttemptAndRetryAnswerOneEffect(t *testing.T) {
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	instance := func() *etcdstore.Store {
		cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		s, err := etcdstore.New(cli)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, when := range []string{"before the write", "after the write", "before Complete"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			l := &ledger{byKey: map[string]string{}}
			p := idemtest.NewPause()
			var stoppedStore idempotency.Store = instance()
			if when == "before Complete" {
				stoppedStore = pausedComplete{Store: stoppedStore.(*etcdstore.Store), pause: p}
			}
			retryStore := instance()
			ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
			attempt := func(keys idempotency.Store, name string, stop bool) func() (string, error) {
				return func() (string, error) {
					return idempotency.Do(ctx, keys, "ledger.Add", func(ctx context.Context) (string, error) {
						if stop && when == "before the write" {
							p.Here()
						}
						e := l.add(ctx, name)
						if stop && when == "after the write" {
							p.Here()
						}
						return e, nil
					})
				}
			}
			a := idemtest.Takeover(t, p, attempt(stoppedStore, "first", true), attempt(retryStore, "retry", false))
			if a.StoppedErr != nil || a.RetryErr != nil || a.Stopped != a.Retry {
				t.Fatalf("answers: stopped %q, %v; retry %q, %v; want one entry twice", a.Stopped, a.StoppedErr, a.Retry, a.RetryErr)
			}
			l.mu.Lock()
			n := len(l.entries)
			l.mu.Unlock()
			if n != 1 {
				t.Fatalf("%d entries, want one", n)
			}
			again, err := attempt(instance(), "third", false)()
			if err != nil || again != a.Retry {
				t.Fatalf("a later attempt = %q, %v; want the recorded %q", again, err, a.Retry)
			}
		})
	}
}
