package grpcclient_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/registry"
)

// cacheInstancer is a registry.Cache a test changes by hand.
type cacheInstancer struct{ *registry.Cache }

func (cacheInstancer) Stop() {}

// trackedConn records its Close.
type trackedConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *trackedConn) Close() error { c.closed.Store(true); return c.Conn.Close() }

// An instance that leaves discovery keeps its connection until its call
// in flight has answered, then the connection is closed (not leaked);
// back at the same address, it gets a new connection and is called.
func TestClient_AnInstanceThatLeavesHasItsConnectionClosedAfterItsLastCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := startEcho(t, "a"), startEcho(t, "b")
	addrA := strings.TrimPrefix(a.ep, "grpc://")
	var mu sync.Mutex
	var connsA []*trackedConn
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil || addr != addrA {
			return conn, err
		}
		tc := &trackedConn{Conn: conn}
		mu.Lock()
		connsA = append(connsA, tc)
		mu.Unlock()
		return tc, nil
	}
	openA := func() (open, all int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range connsA {
			if !c.closed.Load() {
				open++
			}
		}
		return open, len(connsA)
	}
	cache := registry.NewCache()
	cache.Update(sd.Event{Instances: []string{a.instance("a"), b.instance("b")}})
	c, err := grpcclient.NewFromInstancer(cacheInstancer{cache}, "echo",
		grpcclient.WithContextDialer(dialer),
		grpcclient.WithClientOptions(client.WithBalancer(newFirstPick()), client.WithoutOutlier()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := say(c)

	res := make(chan error, 1)
	go func() { _, err := call(ctx, "on:a:sleep:1s"); res <- err }()
	for a.echo.Calls.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the call never reached a")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cache.Update(sd.Event{Instances: []string{b.instance("b")}}) // a leaves mid-call
	waitTargets(t, ctx, c, 1)
	if got, err := call(ctx, "id"); err != nil || got != "b" {
		t.Fatalf("call after a left: %q, %v; want b", got, err)
	}
	if err := <-res; err != nil {
		t.Fatalf("the call in flight on a when it left = %v, want its answer", err)
	}
	for {
		open, all := openA()
		if open == 0 && all == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("a left and its call answered, but %d of its %d connection(s) are still open", open, all)
		}
		time.Sleep(20 * time.Millisecond)
	}

	cache.Update(sd.Event{Instances: []string{a.instance("a"), b.instance("b")}}) // back, same record
	waitTargets(t, ctx, c, 2)
	if got, err := call(ctx, "id"); err != nil || got != "a" {
		t.Fatalf("call after a came back: %q, %v; want a", got, err)
	}
	if open, all := openA(); open != 1 || all != 2 {
		t.Fatalf("a back: %d open of %d connection(s), want a new one (1 of 2)", open, all)
	}
}

// waitTargets waits until the client holds n instances (discovery's
// events reach it on its own goroutine).
func waitTargets(t *testing.T, ctx context.Context, c *grpcclient.Client, n int) {
	t.Helper()
	for len(c.Targets()) != n {
		if ctx.Err() != nil {
			t.Fatalf("client holds %d instances, want %d", len(c.Targets()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
