package consulcluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// A member that some agent keeps seeing as not alive after it came back
// is made alive in that view by WaitReady, which has the agent join it.
// The member here comes back where gossip never reaches it: force-left
// while it was down (so the server does not try to reconnect to it), it
// restarts without its serf snapshot and without -retry-join (so it
// contacts no one). Without the join, WaitReady waits out its deadline;
// the same holds, only not for ever, for a server that holds a restarted
// agent dead at an incarnation as high as the agent's own (see WaitReady).
func TestWaitReady_MakesAnAgentJoinAMemberItDoesNotSeeAlive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := Start(ctx, Config{Servers: 1, Clients: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, a := c.Servers[0], c.Clients[0]
	c.Kill(a)
	if err := c.WaitNodeFailed(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := call(ctx, http.MethodPut, s.Addr(), "/v1/agent/force-leave/"+a.Name, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for {
		view, err := s.view(ctx)
		if err == nil && serfStatus(view[a.Name]) == "left" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never saw %s left: %v %v", s.Name, a.Name, view, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.args = slices.DeleteFunc(slices.Clone(a.args), func(arg string) bool { return strings.HasPrefix(arg, "-retry-join=") })
	if err := os.Remove(filepath.Join(c.dir, a.Name, "serf", "local.snapshot")); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(a); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if c.Rejoins() == 0 {
		t.Fatal("ready without a join: the member was never out of sight")
	}
	t.Logf("ready after %d joins", c.Rejoins())
}
