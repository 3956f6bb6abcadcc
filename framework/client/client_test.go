package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// down is a registry that cannot be reached.
type down struct{}

func (down) Instancer(context.Context, string) (sd.Instancer, error) {
	return nil, errors.New("dial tcp 127.0.0.1:8500: connect: connection refused")
}

func TestClient_FirstCallSucceedsFromSnapshotWhenRegistryIsDownAtStart(t *testing.T) {
	dir := t.TempDir()
	b := startBackend(t, "", nil)
	{
		// A previous run, registry up: it leaves a snapshot behind.
		c := newClient(t, newRegistry(t, b.inst), WithSnapshot(dir))
		if _, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for c.State().Snapshot.SnapshotWritten.IsZero() {
			if time.Now().After(deadline) {
				t.Fatal("snapshot not written")
			}
			time.Sleep(time.Millisecond)
		}
		c.Close()
	}
	c := newClient(t, down{}, WithSnapshot(dir))
	got, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{})
	if err != nil || got.From != b.inst.ID {
		t.Fatalf("first call with registry down: %+v, %v", got, err)
	}
	if st := c.State().Snapshot; st == nil || !st.Stale {
		t.Fatalf("snapshot state %+v, want stale", st)
	}
}

func TestClient_CloseIsIdempotentAndLaterCallsFail(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	if _, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{}); err == nil {
		t.Fatal("call after Close succeeded")
	}
}

func TestClient_WorksOverAFixedInstancer(t *testing.T) {
	b := startBackend(t, "", nil)
	c := must(NewFromInstancer(sd.FixedInstancer{b.inst.HostPort()}, "echo"))
	defer c.Close()
	ep := Endpoint[echoReq, echoResp](c, "POST", "/echo")
	got, err := ep(context.Background(), echoReq{N: 3})
	if err != nil || got.(echoResp).N != 3 {
		t.Fatalf("go-kit endpoint over FixedInstancer: %v, %v", got, err)
	}
}

// A call that finds no instance because discovery is failing says why,
// with the registry's error, and still matches ErrNoEndpoints (report
// j47a: a service account the apiserver refused read as a bare "no
// endpoints available" on every call). An empty set discovery answered
// without error stays the bare error.
func TestClient_NoInstanceSaysWhyDiscoveryIsEmpty(t *testing.T) {
	in := stoppable{registry.NewCache()}
	c, err := NewFromInstancer(in, "echo", WithRetry(retry.WithMaxAttempts(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	in.Update(sd.Event{Err: errors.New(`pods is forbidden: User "system:serviceaccount:shop:mesh" cannot list resource "pods"`)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{})
	if !errors.Is(err, balancer.ErrNoEndpoints) || !strings.Contains(err.Error(), "discovery is failing: pods is forbidden") {
		t.Fatalf("Call = %v; want ErrNoEndpoints with discovery's error", err)
	}
	in.Update(sd.Event{Instances: []string{}})
	for c.ep.DiscoveryErr() != nil { // the endpointer takes the event on its own goroutine
		if ctx.Err() != nil {
			t.Fatal("the endpointer still reports discovery failing after an answer")
		}
		time.Sleep(time.Millisecond)
	}
	_, err = Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{})
	if !errors.Is(err, balancer.ErrNoEndpoints) || strings.Contains(err.Error(), "discovery is failing") {
		t.Fatalf("Call = %v once discovery answered an empty set; want the bare ErrNoEndpoints", err)
	}
}

// stoppable is a registry.Cache as an sd.Instancer: the test feeds it.
type stoppable struct{ *registry.Cache }

func (stoppable) Stop() {}

// started is an Observer that hears ClientStarted.
type started struct {
	NopObserver
	services []string
}

func (s *started) ClientStarted(service string) { s.services = append(s.services, service) }

// A ServiceObserver hears each client's service once, when it is built.
func TestClient_TellsAServiceObserverWhenBuilt(t *testing.T) {
	obs := &started{}
	c, err := NewFromInstancer(stoppable{registry.NewCache()}, "echo", WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(obs.services) != 1 || obs.services[0] != "echo" {
		t.Fatalf("ClientStarted calls %q, want [echo]", obs.services)
	}
}
