package endpointer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/freeport"
)

// dialFactory is a go-kit style factory that connects when it builds (as
// factories that dial eagerly do): an instance not listening yet fails it.
func dialFactory(instance string) (endpoint.Endpoint, io.Closer, error) {
	inst, err := registry.ParseInstance(instance)
	if err != nil {
		return nil, nil, err
	}
	addr, ok := inst.Endpoint("http")
	if !ok {
		return nil, nil, fmt.Errorf("%w: no http endpoint", registry.ErrInvalidInstance)
	}
	conn, err := net.DialTimeout("tcp", addr[len("http://"):], time.Second)
	if err != nil {
		return nil, nil, err
	}
	return func(context.Context, any) (any, error) { return instance, nil }, conn, nil
}

// An instance whose build failed for a passing reason — it registered a
// moment before it listened, and the factory dials — is built again
// later. The instancer sends each instance once (a change), so a failed
// build that waited for the next event from discovery waited for ever on
// a set that did not change: the instance stayed out of the client's set
// for its whole life while discovery listed it.
func TestEndpointer_RetriesABuildThatFailedForAPassingReason(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs, err := freeport.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	held, err := freeport.Hold(addrs[0]) // refuses connections, as a port nobody listens on
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	_, port, _ := net.SplitHostPort(addrs[0])
	var p int
	fmt.Sscan(port, &p)

	reg := memory.New()
	defer reg.Close()
	src, err := reg.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 100)
	e := New(src, func(instance string) (endpoint.Endpoint, io.Closer, error) {
		ep, c, err := dialFactory(instance)
		if err != nil {
			failed <- err
		}
		return ep, c, err
	})
	defer e.Close()
	a := inst(p)
	if err := reg.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		t.Logf("first build: %v", err)
	case <-ctx.Done():
		t.Fatal("the instance was never built")
	}
	if n := len(e.Targets()); n != 0 {
		t.Fatalf("%d targets while the instance refuses connections, want 0", n)
	}
	// It listens now; discovery says nothing new.
	held.Release()
	ln, err := net.Listen("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for len(e.Targets()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the instance listed by discovery was never built once it listened (20 s)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ts := e.Targets(); len(ts) != 1 || ts[0].ID != a.String() {
		t.Fatalf("targets %v, want the one instance", ts)
	}
}

// An instance invalid for the factory for good (registry.ErrInvalidInstance:
// no endpoint of its transport, a plaintext peer for a TLS client) is
// skipped once, not built again every few seconds with a log line each
// time.
func TestEndpointer_DoesNotRetryAnInvalidInstance(t *testing.T) {
	builds := make(chan struct{}, 100)
	reg := memory.New()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := reg.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	e2 := New(src, func(string) (endpoint.Endpoint, io.Closer, error) {
		builds <- struct{}{}
		return nil, nil, fmt.Errorf("%w: serves no endpoint of ours", registry.ErrInvalidInstance)
	})
	defer e2.Close()
	if err := reg.Register(ctx, inst(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-builds:
	case <-ctx.Done():
		t.Fatal("never built")
	}
	time.Sleep(2*rebuildFirst + rebuildFirst/2) // past two rebuilds, were there any
	if n := len(builds); n != 0 {
		t.Fatalf("an invalid instance was built %d more times", n)
	}
}

// A rebuild runs the factory without the endpointer's lock: a factory
// that dials may take seconds, and go-kit balancers ask Endpoints on
// every request.
func TestEndpointer_RebuildDoesNotHoldEndpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := memory.New()
	defer reg.Close()
	src, err := reg.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	inBuild := make(chan struct{}, 10)
	release := make(chan struct{})
	var builds int
	e := New(src, func(instance string) (endpoint.Endpoint, io.Closer, error) {
		builds++ // the receive goroutine only
		if builds == 1 {
			return nil, nil, errors.New("not listening yet")
		}
		inBuild <- struct{}{}
		<-release
		return func(context.Context, any) (any, error) { return instance, nil }, nil, nil
	})
	defer e.Close()
	defer close(release)
	if err := reg.Register(ctx, inst(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inBuild: // the rebuild is in the factory
	case <-ctx.Done():
		t.Fatal("no rebuild")
	}
	got := make(chan error, 1)
	go func() { _, err := e.Endpoints(); got <- err }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Endpoints blocked while a rebuild was in the factory")
	}
}
