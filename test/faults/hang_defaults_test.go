package faults

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/internal/tcpproxy"
	"github.com/warren-mesh/warren/services/user"
)

// hangRate is the load of the client-defaults hang scenarios: lower than
// rate, so that on a loaded 2-core machine a stall of the healthy
// instance does not pile up more retries than the budget's burst.
const hangRate = 50

// Scenario 2b. With the client's defaults — no per-attempt timeout
// configured, only the adaptive deadline (4 × p99, 250 ms … 2 s), P2C,
// 3 attempts, the retry budget, ejection after 2 timeouts in a row — an
// instance that accepts connections and never answers costs no
// client-visible error, for GETs (idempotent) and for keyed POSTs
// (user.Create carries an idempotency key, the same on every attempt):
// the hung attempt is abandoned at its deadline and retried elsewhere.
// Two kinds of hang: SIGSTOP (the process stops; the kernel still
// accepts), and an instance whose answers never come back (a proxy in
// front of it holds them) while it stays registered and healthy in
// discovery, so only the client's own deadline and ejection protect it.
//
// Judged by counts, not speed: 0 errors, enough calls sent, and at least
// one attempt that met the hang (else the scenario proved nothing).
// Ejection is logged, not required: after one timed-out attempt P2C may
// simply stop picking the instance. Speed (p99, time to ejection) is the
// bench's faults rows.
func TestInstanceHang_ClientDefaults_NoErrorsForGETsAndKeyedPOSTs(t *testing.T) {
	for _, kind := range []string{"sigstop", "no-answer"} {
		t.Run(kind, func(t *testing.T) {
			m := startMesh(t, "etcd")
			var hung *devmesh.Instance
			var hang, unhang func() error
			switch kind {
			case "sigstop":
				hung = m.Instance("user", 1)
				hang = func() error { return m.Signal(hung, syscall.SIGSTOP) }
				unhang = func() error { return m.Signal(hung, syscall.SIGCONT) }
			case "no-answer":
				hung, hang, unhang = proxiedInstance(t, m.Mesh)
			}
			w := watchSet(t, m.Discovery(), "user")
			if _, err := w.await(time.Now(), 20*time.Second, has("user-1", "user-2", hung.ID())); err != nil {
				t.Fatal(err)
			}

			att := newAttempts()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// Client defaults: only counting hooks, no retry or timeout option.
			c, err := user.NewClient(ctx, m.Discovery(), client.WithRoundTripper(att.wrap), client.WithObserver(att))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			u, err := c.Create(ctx, user.CreateRequest{Name: "Grace Hopper", Email: fmt.Sprintf("hang-%s-%d@example.com", kind, time.Now().UnixNano())})
			if err != nil {
				t.Fatal(err)
			}
			var n, posts atomic.Int64
			call := func(ctx context.Context) error {
				i := n.Add(1)
				if i%10 != 0 {
					_, err := c.Get(ctx, user.GetRequest{ID: u.ID})
					return err
				}
				posts.Add(1)
				_, err := c.Create(ctx, user.CreateRequest{Name: "Load", Email: fmt.Sprintf("hang-%s-%d-%d@example.com", kind, time.Now().UnixNano(), i)})
				return err
			}
			// Warm up: the adaptive deadline learns from 20+ attempts.
			if res := (Load{Rate: hangRate, Duration: 2 * time.Second, Timeout: 30 * time.Second}).Start(context.Background(), call).Wait(); res.Errors() > 0 {
				t.Fatalf("before the hang: %d of %d calls failed: %v", res.Errors(), res.Total(), res.FirstErrors(3))
			}
			run := Load{Rate: hangRate, Duration: 12 * time.Second, Timeout: 30 * time.Second}.Start(context.Background(), call)
			time.Sleep(time.Second)
			if err := hang(); err != nil {
				run.Stop()
				run.Wait()
				t.Fatal(err)
			}
			res := run.Wait()
			if err := unhang(); err != nil {
				t.Error(err)
			}
			hungAtt := att.host(hung.Registered.HostPort())
			t.Logf("%s: %s; %d keyed POSTs; attempts: %s; ejections of %s: %d",
				kind, res, posts.Load(), att, hung.ID(), att.ejections(hung.ID()))
			if min := hangRate * 12 / 2; res.Total() < min {
				t.Errorf("only %d calls sent; want ≥ %d for 0 errors to mean something", res.Total(), min)
			}
			if n := res.Errors(); n > 0 {
				t.Errorf("%d of %d calls failed with client defaults; want 0. First: %v", n, res.Total(), res.FirstErrors(5))
			}
			if hungAtt.TimedOut == 0 {
				t.Errorf("no attempt met the hung instance (%s): the scenario proved nothing", hung.ID())
			}
		})
	}
}

// proxiedInstance starts a third user instance advertised at a proxy's
// address, and returns it with functions that make the proxy hold every
// answer (the instance stays registered and passes its own checks) and
// let them through again.
func proxiedInstance(t *testing.T, m *devmesh.Mesh) (*devmesh.Instance, func() error, func() error) {
	t.Helper()
	port := freePort(t)
	proxy, err := tcpproxy.New(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	inst, err := m.StartInstance("user", devmesh.InstanceOptions{Env: []string{
		fmt.Sprintf("WARREN_LISTEN=127.0.0.1:%d", port),
		"WARREN_ADVERTISE=" + proxy.Addr(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx, inst); err != nil {
		t.Fatal(err)
	}
	hang := func() error { proxy.SetDelay(time.Hour); return nil }
	unhang := func() error { proxy.SetDelay(0); return nil }
	return inst, hang, unhang
}
