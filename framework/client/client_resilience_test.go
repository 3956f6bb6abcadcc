package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

func TestClient_BackendKilledMidLoadCausesNoClientErrors(t *testing.T) {
	var bs []*backend
	var insts []registry.Instance
	for range 3 {
		b := startBackend(t, "", nil)
		bs = append(bs, b)
		insts = append(insts, b.inst)
	}
	c := newClient(t, newRegistry(t, insts...), WithBalancer(balancer.NewRoundRobin()))
	var killed sync.Once
	errs, lat := load(8, 6000, 10*time.Second, func(i int) error {
		if i == 1500 {
			killed.Do(func() { go bs[1].kill() }) // crash: no deregistration
		}
		return get(c)(i)
	})
	for i, err := range errs {
		if i < 5 {
			t.Errorf("client error: %v", err)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d client errors of %d calls", len(errs), len(lat))
	}
	st := c.State()
	t.Logf("%d calls, retries %d, ejected %d, p99 %s", len(lat), st.Retries, st.Ejected, p99(lat))
	if st.Ejected != 1 {
		t.Errorf("killed backend not ejected: %+v", st)
	}
}

func TestClient_RollingRestartCausesNoClientErrors(t *testing.T) {
	var insts []registry.Instance
	var bs []*backend
	for range 3 {
		b := startBackend(t, "", nil)
		bs = append(bs, b)
		insts = append(insts, b.inst)
	}
	reg := newRegistry(t, insts...)
	c := newClient(t, reg)
	ctx, cancel := context.WithCancel(context.Background())
	restarts := make(chan error, 1)
	go func() {
		defer cancel()
		for _, old := range bs {
			// What a lifecycle does: deregister, let clients notice, drain
			// in-flight requests, stop; the replacement comes up elsewhere.
			if err := reg.Deregister(context.Background(), old.inst); err != nil {
				restarts <- err
				return
			}
			// Withdrawal propagates: wait until the client has seen it,
			// not a fixed sleep a loaded machine may outrun; then a grace
			// period for calls that picked the old instance just before,
			// as the lifecycle's --grace does.
			if err := waitInstances(c, 2, 10*time.Second); err != nil {
				restarts <- err
				return
			}
			time.Sleep(250 * time.Millisecond)
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = old.srv.Shutdown(sctx)
			scancel()
			nb := startBackend(t, "", nil)
			if err := reg.Register(context.Background(), nb.inst); err != nil {
				restarts <- err
				return
			}
			if err := waitInstances(c, 3, 10*time.Second); err != nil {
				restarts <- err
				return
			}
		}
		restarts <- nil
	}()
	errs, lat := loadUntil(ctx, 8, 1_000_000, 10*time.Second, func(i int) error {
		_, err := Call[echoReq, echoResp](context.Background(), c, "POST", "/echo", echoReq{N: i})
		return err
	})
	if err := <-restarts; err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d client errors of %d calls, first: %v", len(errs), len(lat), errs[0])
	}
	t.Logf("%d calls through 3 restarts, 0 errors", len(lat))
}

// waitInstances polls until the client picks among n instances, or fails
// after timeout.
func waitInstances(c *Client, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.State().Instances != n {
		if time.Now().After(deadline) {
			return fmt.Errorf("client has %d instances after %s, want %d", c.State().Instances, timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func TestClient_HungBackendIsCutOffByPerAttemptTimeout(t *testing.T) {
	const perAttempt = 100 * time.Millisecond
	h := startHung(t)
	a, b := startBackend(t, "", nil), startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, h.inst, a.inst, b.inst),
		WithBalancer(balancer.NewRoundRobin()), WithRetry(retry.WithPerAttemptTimeout(perAttempt)))
	errs, lat := load(4, 1000, 20*time.Second, get(c))
	if len(errs) > 0 {
		t.Fatalf("%d errors of %d, first: %v", len(errs), len(lat), errs[0])
	}
	h.mu.Lock()
	hungAttempts := len(h.conn) // a hung connection is never reused: one per attempt
	h.mu.Unlock()
	t.Logf("%d calls, p99 %s, max %s, ejected %d, attempts on the hung instance %d", len(lat), p99(lat), slices.Max(lat), c.State().Ejected, hungAttempts)
	// Judged by counts, not latency: every call succeeded within its
	// deadline (the hung attempt was cut off and retried elsewhere), and the
	// hung instance was ejected after a handful of attempts instead of
	// taking its round-robin third of 1000 calls.
	if len(lat) < 100 {
		t.Fatalf("only %d calls in 20s", len(lat))
	}
	if c.State().Ejected < 1 || hungAttempts > 50 {
		t.Fatalf("ejected %d, %d attempts reached the hung instance; want it ejected after a few", c.State().Ejected, hungAttempts)
	}
}

func TestClient_FailingBackendIsEjectedThenReadmittedAfterRecovery(t *testing.T) {
	const cooldown = 300 * time.Millisecond
	bad, a, b := startBackend(t, "", nil), startBackend(t, "", nil), startBackend(t, "", nil)
	bad.mode.Store(mode500)
	logs := &syncbuf.Buffer{}
	c := newClient(t, newRegistry(t, bad.inst, a.inst, b.inst), WithBalancer(balancer.NewRoundRobin()),
		WithOutlier(outlier.WithConsecutiveFailures(3), outlier.WithCooldown(cooldown, cooldown)),
		WithLogger(log.NewLogfmtLogger(logs)))
	call := func() error {
		_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{})
		return err
	}
	badTarget := func() *balancer.Target {
		for _, t := range c.Targets() {
			if t.Instance().ID == bad.inst.ID {
				return t
			}
		}
		return nil
	}
	for i := 0; ; i++ {
		_ = call() // 500s are answers, not retried: the caller sees them until ejection
		if badTarget().Breaker().State() != outlier.Closed {
			break
		}
		if i > 100 {
			t.Fatal("not ejected after 100 calls")
		}
	}
	ejectedAt := time.Now()
	before := bad.hits.Load()
	for range 30 {
		if err := call(); err != nil {
			t.Fatalf("call with bad instance ejected: %v", err)
		}
	}
	if time.Since(ejectedAt) < cooldown && bad.hits.Load() != before {
		t.Fatalf("ejected backend got %d requests during its cooldown", bad.hits.Load()-before)
	}

	bad.mode.Store(modeOK)
	deadline := time.Now().Add(5 * time.Second)
	for badTarget().Breaker().State() != outlier.Closed || bad.hits.Load() < before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("not readmitted: state %s, hits %d", badTarget().Breaker().State(), bad.hits.Load()-before)
		}
		if err := call(); err != nil {
			t.Fatalf("call during readmission: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if e := c.State().Ejected; e != 0 {
		t.Fatalf("%d still ejected", e)
	}
	// The log keeps what the metrics lose when the instance leaves.
	for _, want := range []string{
		`level=warn msg="instance ejected: outlier detection took it out of rotation after failures in a row" service=echo instance=` + bad.inst.ID,
		`level=info msg="ejected instance answered its probe; back in rotation" service=echo instance=` + bad.inst.ID,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestClient_RetryBudgetCapsRetriesDuringAnOutage(t *testing.T) {
	const requests, ratio, burst = 300, 0.2, 5
	var bs []*backend
	var insts []registry.Instance
	for range 3 {
		b := startBackend(t, "", nil)
		b.mode.Store(mode503)
		bs = append(bs, b)
		insts = append(insts, b.inst)
	}
	c := newClient(t, newRegistry(t, insts...), WithoutOutlier(),
		WithRetry(retry.WithMaxAttempts(3), retry.WithBackoff(time.Microsecond, time.Microsecond), retry.WithBudget(retry.NewBudget(ratio, burst))))
	errs, _ := load(4, requests, 20*time.Second, get(c))
	var attempts int64
	for _, b := range bs {
		attempts += b.hits.Load()
	}
	retries := attempts - requests
	limit := int64(requests*ratio) + burst
	t.Logf("%d requests, %d attempts, %d retries (limit %d; without a budget %d)", requests, attempts, retries, limit, 2*requests)
	if len(errs) != requests {
		t.Fatalf("%d errors, want every request to fail", len(errs))
	}
	if retries > limit || retries < limit-3 {
		t.Fatalf("%d retries, want ≤ %d and close to it", retries, limit)
	}
	// A request the budget let retry fully spent two tokens and fails with
	// its three attempts' errors; every other one was cut short by the
	// budget and must say so. Which kind finishes last is up to the
	// scheduler, so count them.
	exhausted := 0
	for _, err := range errs {
		if errors.Is(err, retry.ErrBudgetExhausted) {
			exhausted++
		}
	}
	if want := requests - int(retries)/2; exhausted < want {
		t.Errorf("%d errors say the budget ran out, want ≥ %d; e.g. %v", exhausted, want, errs[len(errs)-1])
	}
}
