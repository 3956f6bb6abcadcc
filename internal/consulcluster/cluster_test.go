package consulcluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
)

// takenFirst returns a source of free ports whose first answer has its
// first port (the first agent's HTTP port) replaced by one held open by the
// test, as when another process binds a port between FreePorts and the
// agent's start.
func takenFirst(t *testing.T, calls *int) func(int) ([]int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return func(n int) ([]int, error) {
		*calls++
		ports, err := consultest.FreePorts(n)
		if err == nil && *calls == 1 {
			ports[0] = l.Addr().(*net.TCPAddr).Port
		}
		return ports, err
	}
}

func TestStart_BeginsAgainOnFreshPortsWhenAPortWasTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var calls int
	c, err := startWith(ctx, Config{Servers: 1}, takenFirst(t, &calls))
	if err != nil {
		t.Fatalf("start with a taken port: %v", err)
	}
	defer c.Close()
	if calls != 2 {
		t.Fatalf("free ports asked %d times, want 2 (the first attempt lost its port)", calls)
	}
	if _, err := c.Leader(ctx); err != nil {
		t.Fatal(err)
	}
}

// One attempt with a taken port ends as soon as the agent exits, with
// ErrExited marked as a lost port, not at the context's deadline.
func TestStart_AnAgentThatCannotBindEndsTheAttemptAtOnce(t *testing.T) {
	bin, err := consultest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var calls int
	c, err := start(ctx, Config{Datacenter: "dc1", Servers: 1}, bin, takenFirst(t, &calls))
	if err == nil {
		c.Close()
		t.Fatal("an agent started on a taken HTTP port")
	}
	if !errors.Is(err, ErrExited) || !errors.Is(err, errPortTaken) {
		t.Fatalf("err = %v, want ErrExited marked errPortTaken", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the attempt waited out its context: %v", err)
	}
}
