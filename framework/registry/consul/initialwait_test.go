package consul

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/warren-mesh/warren/internal/silent"
)

// firstEvent returns the event Register hands a new subscriber at once,
// and whether there was one; the subscription is undone before it
// returns.
func firstEvent(in sd.Instancer) (sd.Event, bool) {
	ch := make(chan sd.Event, 1)
	in.Register(ch)
	var (
		ev  sd.Event
		got bool
	)
	select {
	case ev = <-ch:
		got = true
	default:
	}
	stop, drained := make(chan struct{}), make(chan struct{})
	go func() { // read until deregistered, as sd.Instancer requires
		defer close(drained)
		for {
			select {
			case <-ch:
			case <-stop:
				return
			}
		}
	}()
	in.Deregister(ch)
	close(stop)
	<-drained
	return ev, got
}

// An agent that does not answer holds Instancer for one initial wait, not
// one per failover datacenter, and that is no error: the instancer runs on
// and publishes when the query ends. Each of the three instancers would
// wait out the whole bound were the deadline per instancer.
func TestInstancer_SilentAgent_ReturnsAfterOneInitialWaitWithoutError(t *testing.T) {
	const bound = time.Second
	r := newRegistry(t, silent.Listen(t), WithInitialWait(bound), WithFailover("dc2", "dc3"))
	start := time.Now()
	in, err := r.Instancer(ctxT(t, time.Minute), "silent")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Instancer with a silent agent: %v, want no error", err)
	}
	defer in.Stop()
	if took < bound {
		t.Errorf("returned after %s, before the %s initial wait: it did not wait for the agent", took, bound)
	}
	if took >= 3*bound {
		t.Errorf("returned after %s: three datacenters each waited the %s initial wait, want one for all", took, bound)
	}
	if ev, got := firstEvent(in); got {
		t.Errorf("an event before the agent answered: %+v", ev)
	}
}

// An agent that refuses (down) ends the wait at once, with the error event
// already published for the first subscriber, and NewInstancer itself
// does not fail.
func TestNewInstancer_RefusingAgent_ReturnsAtOnceWithTheErrorEvent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	const bound = 20 * time.Second
	r := newRegistry(t, addr, WithInitialWait(bound))
	start := time.Now()
	in, err := r.NewInstancer(ctxT(t, 2*bound), "refused")
	if err != nil {
		t.Fatalf("NewInstancer with a refusing agent: %v, want no error", err)
	}
	defer in.Stop()
	if took := time.Since(start); took >= bound {
		t.Fatalf("returned after %s, the whole initial wait: a refusal should end it", took)
	}
	ev, got := firstEvent(in)
	if !got || ev.Err == nil {
		t.Fatalf("first event %+v (any: %v), want the agent's error", ev, got)
	}
}

// A ctx that ends sooner than the initial wait ends it too, without an
// error.
func TestNewInstancer_CtxShorterThanInitialWaitWins(t *testing.T) {
	r := newRegistry(t, silent.Listen(t), WithInitialWait(20*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	in, err := r.NewInstancer(ctx, "silent")
	if err != nil {
		t.Fatalf("NewInstancer: %v, want no error", err)
	}
	defer in.Stop()
	if took := time.Since(start); took >= 10*time.Second {
		t.Fatalf("returned after %s: the ctx's deadline did not bound the wait", took)
	}
}

// The initial wait is 3 s by default, as docs/registry-consul.md and the
// other backends say.
func TestInitialWait_DefaultIs3s(t *testing.T) {
	if got := defaultConfig().initialWait; got != 3*time.Second || DefaultInitialWait != 3*time.Second {
		t.Errorf("default initial wait %s (DefaultInitialWait %s), docs say 3s", got, DefaultInitialWait)
	}
}

// An agent that accepts the connection and never answers is reported
// after the request timeout: a first query (index 0) does not block, so
// its deadline is not the minute-long wait time of the blocking queries
// after it, which left the first error event ~64 s away.
func TestInstancer_SilentAgent_FirstErrorAfterTheRequestTimeout(t *testing.T) {
	r := newRegistry(t, silent.Listen(t), WithInitialWait(0), WithRequestTimeout(500*time.Millisecond))
	in, err := r.Instancer(ctxT(t, time.Minute), "silent")
	if err != nil {
		t.Fatalf("Instancer: %v", err)
	}
	defer in.Stop()
	ch := make(chan sd.Event, 16)
	in.Register(ch)
	defer in.Deregister(ch)
	const bound = 20 * time.Second // generous: the wait time is a minute
	deadline := time.After(bound)
	for {
		select {
		case ev := <-ch:
			if ev.Err != nil {
				return
			}
		case <-deadline:
			t.Fatalf("no error event within %s from an agent that never answers", bound)
		}
	}
}
