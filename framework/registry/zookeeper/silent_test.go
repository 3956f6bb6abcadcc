package zookeeper

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// A ZooKeeper that goes silent — a partition without resets, a stalled
// server — answers no request, and the client notices only at its read
// deadline, two thirds of the session timeout (6.7 s with the default
// 10 s). Register, Deregister and Close return when their ctx (or the
// close timeout) ends all the same, with an error that wraps ctx.Err()
// and says what was left undone (report j48c 2: each took 6.7 s, past
// the App's 5 s withdraw timeout and the 3 s close timeout, and a second
// signal could not cut it short; Close returned nil with the znode still
// there). The four calls run together, on four registries of one server,
// so all of them end long before the read deadline would.
func TestSilentServer_RegisterDeregisterAndCloseEndWithTheirCtx(t *testing.T) {
	const (
		budget = time.Second     // each call's ctx, and Close's close timeout
		bound  = 4 * time.Second // generous for a loaded machine; the read deadline is 6.7 s
	)
	srv := startServer(t)
	root := testRoot(t)
	open := func(closeTimeout time.Duration) *Registry {
		r, _ := newTestRegistry(t, srv.Addr(), root, WithSessionTimeout(DefaultSessionTimeout), WithCloseTimeout(closeTimeout))
		return r
	}
	// Deregister's ctx ends before its registry's close timeout (3 s);
	// Close has only its close timeout.
	regR, regD, regX, regC := open(DefaultCloseTimeout), open(DefaultCloseTimeout), open(DefaultCloseTimeout), open(budget)
	for i, r := range []*Registry{regR, regD, regX, regC} {
		if err := r.Register(ctxFor(t, time.Minute), testInstance("sil", i+1)); err != nil {
			t.Fatal(err)
		}
	}

	srv.Silence()
	defer srv.Heal()
	silenced := time.Now()

	type result struct {
		took time.Duration
		err  error
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[string]result{}
	)
	run := func(name string, call func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := call()
			mu.Lock()
			results[name] = result{time.Since(start), err}
			mu.Unlock()
		}()
	}
	run("Register", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		return regR.Register(ctx, testInstance("sil", 10))
	})
	run("Deregister", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		return regD.Deregister(ctx, testInstance("sil", 2))
	})
	run("Deregister, ctx cancelled (a forced exit)", func() error {
		ctx, cancel := context.WithCancel(context.Background())
		defer time.AfterFunc(budget, cancel).Stop()
		return regX.Deregister(ctx, testInstance("sil", 3))
	})
	run("Close", regC.Close)
	wg.Wait()
	if since := time.Since(silenced); since > 6*time.Second {
		t.Logf("the calls ended %s after the silence began, near the read deadline: the bounds below prove less", since)
	}

	for _, c := range []struct {
		name string
		want error
		says string
	}{
		{"Register", context.DeadlineExceeded, "goes with the session"},
		{"Deregister", context.DeadlineExceeded, "may remain until the session expires"},
		{"Deregister, ctx cancelled (a forced exit)", context.Canceled, "may remain until the session expires"},
		{"Close", context.DeadlineExceeded, "may remain until the session expires"},
	} {
		res := results[c.name]
		t.Logf("%s while ZooKeeper is silent: %s, err=%v", c.name, res.took.Round(time.Millisecond), res.err)
		if res.took > bound {
			t.Errorf("%s returned after %s (ctx or close timeout %s); want within %s", c.name, res.took.Round(time.Millisecond), budget, bound)
		}
		if !errors.Is(res.err, c.want) {
			t.Errorf("%s: err = %v, want one wrapping %v", c.name, res.err, c.want)
		}
		if res.err != nil && !strings.Contains(res.err.Error(), c.says) {
			t.Errorf("%s: err = %v, want it to say %q", c.name, res.err, c.says)
		}
	}
}
