package etcdstore

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/idempotency"
)

// shared is the package's etcd; each test keeps to its own keys.
var shared *embedetcd.Server

func TestMain(m *testing.M) {
	s, err := embedetcd.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		os.Exit(1)
	}
	shared = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// testDeadline bounds every wait of a test: far beyond what the store
// needs, so a loaded machine only makes a test slower.
const testDeadline = 30 * time.Second

func newClient(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: shared.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// newStore returns the store of one instance of a service: each has its
// own, over its own client, and all of a test's share the etcd.
func newStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := New(newClient(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

func claim(t *testing.T, s *Store, key string, until time.Time) ([]byte, idempotency.State) {
	t.Helper()
	res, st, err := s.Claim(testCtx(t), key, until)
	if err != nil {
		t.Fatal(err)
	}
	return res, st
}

func live() time.Time { return time.Now().Add(time.Minute) }

// expired is the until of a claim whose attempt stopped: already past, so
// no test waits for it to pass.
func expired() time.Time { return time.Now().Add(-time.Second) }

var stateNames = map[idempotency.State]string{idempotency.Claimed: "Claimed", idempotency.Done: "Done", idempotency.Busy: "Busy"}

func wantState(t *testing.T, what string, got, want idempotency.State) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %s, want %s", what, stateNames[got], stateNames[want])
	}
}

// A new key is claimed; while the claim holds, every attempt — on another
// instance or this one — is Busy.
func TestClaim_NewKeyIsClaimedThenBusy(t *testing.T) {
	a, b := newStore(t), newStore(t)
	key := "op/" + idempotency.NewKey()
	_, st := claim(t, a, key, live())
	wantState(t, "first claim", st, idempotency.Claimed)
	_, st = claim(t, b, key, live())
	wantState(t, "another instance while claimed", st, idempotency.Busy)
	_, st = claim(t, a, key, live())
	wantState(t, "the same instance while claimed", st, idempotency.Busy)
}

// A claim past its until (its attempt stopped mid-call) is taken over, and
// the new claim holds against the first instance.
func TestClaim_ExpiredClaimIsTakenOver(t *testing.T) {
	a, b := newStore(t), newStore(t)
	key := "op/" + idempotency.NewKey()
	_, st := claim(t, a, key, expired())
	wantState(t, "first claim", st, idempotency.Claimed)
	_, st = claim(t, b, key, live())
	wantState(t, "claim after expiry", st, idempotency.Claimed)
	_, st = claim(t, a, key, live())
	wantState(t, "the first instance after the takeover", st, idempotency.Busy)
}

// Complete saves the result: every later claim is Done with it.
func TestComplete_KeyIsDoneWithItsResult(t *testing.T) {
	a, b := newStore(t), newStore(t)
	key := "op/" + idempotency.NewKey()
	claim(t, a, key, live())
	if err := a.Complete(testCtx(t), key, []byte(`{"id":"u1"}`)); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Store{"another instance": b, "the same instance": a} {
		res, st := claim(t, s, key, live())
		wantState(t, name, st, idempotency.Done)
		if string(res) != `{"id":"u1"}` {
			t.Fatalf("%s: result %q, want the saved one", name, res)
		}
	}
}

// Release gives the key up: the next attempt claims it and runs the call.
func TestRelease_KeyIsClaimedAgain(t *testing.T) {
	a, b := newStore(t), newStore(t)
	key := "op/" + idempotency.NewKey()
	claim(t, a, key, live())
	if err := a.Release(testCtx(t), key); err != nil {
		t.Fatal(err)
	}
	_, st := claim(t, b, key, live())
	wantState(t, "claim after release", st, idempotency.Claimed)
}

// An attempt that resumes after another instance took its expired claim
// over neither overwrites that attempt's result nor frees the key under
// it: Complete and Release end only the Store's own claim.
func TestCompleteAndRelease_StaleAttemptLeavesTheTakeoverAlone(t *testing.T) {
	stale, taker, other := newStore(t), newStore(t), newStore(t)
	key := "op/" + idempotency.NewKey()
	claim(t, stale, key, expired())
	_, st := claim(t, taker, key, live())
	wantState(t, "takeover", st, idempotency.Claimed)

	if err := stale.Release(testCtx(t), key); err != nil {
		t.Fatal(err)
	}
	_, st = claim(t, other, key, live())
	wantState(t, "after the stale attempt's Release", st, idempotency.Busy)

	if err := stale.Complete(testCtx(t), key, []byte(`"stale"`)); err != nil {
		t.Fatalf("stale Complete: %v, want nil (the holder saves the result)", err)
	}
	_, st = claim(t, other, key, live())
	wantState(t, "after the stale attempt's Complete", st, idempotency.Busy)

	if err := taker.Complete(testCtx(t), key, []byte(`"taker"`)); err != nil {
		t.Fatal(err)
	}
	if err := stale.Complete(testCtx(t), key, []byte(`"stale"`)); err != nil {
		t.Fatal(err)
	}
	if err := stale.Release(testCtx(t), key); err != nil {
		t.Fatal(err)
	}
	res, st := claim(t, other, key, live())
	wantState(t, "after the holder's Complete", st, idempotency.Done)
	if string(res) != `"taker"` {
		t.Fatalf("result %s, want the holder's", res)
	}
}

// Keys live under the prefix, DefaultPrefix unless WithPrefix.
func TestNew_KeysUnderThePrefix(t *testing.T) {
	cli := newClient(t)
	key := "op/" + idempotency.NewKey()
	for _, prefix := range []string{DefaultPrefix, "/t/" + idempotency.NewKey() + "/"} {
		s, err := New(cli, WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		claim(t, s, key, live())
		resp, err := cli.Get(testCtx(t), prefix+key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %s = %v, %v; want the claim", prefix+key, resp, err)
		}
	}
}

func TestNew_RefusesBadSettings(t *testing.T) {
	cli := newClient(t)
	if _, err := New(nil); err == nil {
		t.Error("nil client accepted")
	}
	for name, o := range map[string]Option{
		"empty prefix":        WithPrefix(""),
		"retention too short": WithRetention(idempotency.DefaultClaimTTL - time.Millisecond),
		"zero timeout":        WithRequestTimeout(0),
	} {
		if _, err := New(cli, o); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
