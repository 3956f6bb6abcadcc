package etcdstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// A result is Done during the retention and forgotten after it: etcd
// deletes the key (its lease expired), and the next claim runs the call
// again.
func TestRetention_DoneKeyIsForgotten(t *testing.T) {
	cli := newClient(t)
	keep := idempotency.DefaultClaimTTL
	s, err := New(cli, WithRetention(keep))
	if err != nil {
		t.Fatal(err)
	}
	key := "op/" + idempotency.NewKey()
	claim(t, s, key, live())
	done := time.Now() // before Complete: the retention runs from no earlier
	if err := s.Complete(testCtx(t), key, []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	if _, st := claim(t, s, key, live()); st != idempotency.Done && time.Since(done) < keep {
		t.Fatalf("within the retention: %s, want Done", stateNames[st])
	}
	for deadline := time.Now().Add(testDeadline); ; {
		resp, err := cli.Get(testCtx(t), DefaultPrefix+key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the result is still in etcd %v after a %v retention", testDeadline, keep)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took := time.Since(done); took < keep {
		t.Fatalf("the result was deleted after %v, within its %v retention", took, keep)
	}
	_, st := claim(t, s, key, live())
	wantState(t, "claim after the retention", st, idempotency.Claimed)
}

// Errors name the key and wrap the cause.
func TestClaim_ErrorNamesTheKeyAndWrapsTheCause(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller went away
	key := "op/" + idempotency.NewKey()
	_, _, err := s.Claim(ctx, key, live())
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), key) {
		t.Fatalf("err = %v, want context.Canceled wrapped, naming %s", err, key)
	}
}

// Writes share their bucket's lease instead of granting one each: a burst
// of keyed calls costs etcd one lease, not one per call.
func TestRetention_WritesShareABucketLease(t *testing.T) {
	cli := newClient(t)
	s, err := New(cli)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "op/" + idempotency.NewKey() + "/"
	const calls = 20
	for i := range calls {
		key := prefix + strconv.Itoa(i)
		claim(t, s, key, time.Now().Add(idempotency.DefaultClaimTTL))
		if i%2 == 0 {
			if err := s.Complete(testCtx(t), key, []byte(`1`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	resp, err := cli.Get(testCtx(t), DefaultPrefix+prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	leases := map[int64]bool{}
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			t.Fatalf("%s has no lease: it would never be forgotten", kv.Key)
		}
		leases[kv.Lease] = true
	}
	// A bucket is a minute wide: two at most, if the burst crossed one's end.
	if len(resp.Kvs) != calls || len(leases) > 2 {
		t.Fatalf("%d keys under %d leases; want %d keys under one or two", len(resp.Kvs), len(leases), calls)
	}
}
