package faults

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/services/user"
)

// Scenario 2b. The hang of scenario 2 with the client's defaults: no
// per-attempt timeout configured, so only the adaptive deadline (4 × the
// observed p99, 25 ms–2 s) cuts off attempts on the hung instance. One
// call in twenty is a keyed POST (user.Create, which the service deduplicates
// by idempotency key; each one fsyncs several files, so a larger share
// overloads a loaded CI machine by itself), the rest GETs: none may fail. A keyed POST
// retried without its key, or deduplication removed, would fail on the
// retry with "email taken" or be refused a retry (it may have acted).
func TestInstanceHang_ClientDefaults_NoErrorsForGETsAndKeyedPOSTs(t *testing.T) {
	m := startMesh(t, "etcd")
	// WithPerAttemptTimeout(0) takes back the fixed timeout newUserLoad
	// sets: what remains is the default client.
	l := newUserLoad(t, m.Discovery(), client.WithRetry(retry.WithPerAttemptTimeout(0)))
	var creates, n atomic.Int64
	mixed := func(ctx context.Context) error {
		if n.Add(1)%20 != 0 {
			return l.get(ctx)
		}
		i := creates.Add(1)
		_, err := l.c.Create(ctx, user.CreateRequest{Name: "Load", Email: fmt.Sprintf("load-%d-%d@example.com", time.Now().UnixNano(), i)})
		return err
	}
	run := Load{Rate: rate, Duration: 8 * time.Second}.Start(context.Background(), mixed)
	time.Sleep(2 * time.Second)
	hung := m.Instance("user", 1)
	if err := m.Signal(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	res := run.Wait()
	if err := m.Signal(hung, syscall.SIGCONT); err != nil {
		t.Error(err)
	}
	t.Logf("SIGSTOP under GET + keyed POST load, client defaults: %s; %d creates; attempts: %s; ejections of %s: %d",
		res, creates.Load(), l.att, hung.ID(), l.att.ejections(hung.ID()))
	checkNoErrors(t, "SIGSTOP under load with client defaults", res, 8*time.Second)
	// Judged by what the client did: the hung instance's attempts were
	// cut off (not waited out to the call's 5 s deadline) and it was
	// ejected after consecutive timeouts.
	if l.att.ejections(hung.ID()) < 1 {
		t.Errorf("the hung instance %s was never ejected", hung.ID())
	}
	if lost := l.att.host(hung.Registered.HostPort()).TimedOut; lost > maxAttemptsOnHung {
		t.Errorf("%d attempts timed out on the hung instance; want ≤ %d", lost, maxAttemptsOnHung)
	}
}
