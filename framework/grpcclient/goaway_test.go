package grpcclient_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// An instance restarted in place (drained with GOAWAY, then back at the
// same address, never leaving discovery) under calls that are not
// idempotent: no call fails. Calls in flight finish on the draining
// connection; calls after the GOAWAY find no listener (surely unsent) and
// go to the other instance; once it is back, it is called again.
func TestClient_AnInstanceRestartedInPlaceUnderLoadFailsNoCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := startEcho(t, "a"), startEcho(t, "b")
	addrA := strings.TrimPrefix(a.ep, "grpc://")
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{a.instance("a"), b.instance("b")}, "echo",
		grpcclient.WithClientOptions(client.WithoutOutlier()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := say(c) // not idempotent

	stop := make(chan struct{})
	halt := sync.OnceFunc(func() { close(stop) })
	var calls, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 100000; i++ { // bounded; ended by stop
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if _, err := call(ctx, "sleep:20ms"); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	defer func() { halt(); wg.Wait() }()
	for a.echo.Calls.Load() < 20 {
		if ctx.Err() != nil {
			t.Fatal("a took no calls")
		}
		time.Sleep(10 * time.Millisecond)
	}
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	if err := a.Shutdown(dctx); err != nil {
		t.Fatalf("a's drain: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // a is down a while: calls meanwhile go to b
	a2 := startEcho(t, "a", grpcserver.WithAddr(addrA))
	for a2.echo.Calls.Load() < 20 {
		if ctx.Err() != nil {
			t.Fatalf("a, back at %s, took %d calls", addrA, a2.echo.Calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	halt()
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed across a's restart; first: %v", n, calls.Load(), *firstErr.Load())
	}
}
