package grpcclient_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// An instance that stays in discovery while its process is down (a crash
// restarted before its lease expires, a registry outage) keeps its
// ClientConn, which redials on its own with grpc-go's backoff. Once it is
// back at the same address, calls reach it again within about a second
// of its return, not after the backoff the outage built up (grpc-go's
// default: up to 120 s; after six failed dials the next waits 8–13 s,
// and every call meanwhile fails fast on the stale TRANSIENT_FAILURE).
func TestClient_AnInstanceBackAtItsAddressIsCalledWithoutTheOutagesBackoff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, b := startEcho(t, "a"), startEcho(t, "b")
	addrA := strings.TrimPrefix(a.ep, "grpc://")
	var dialsA, failedA atomic.Int64
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if addr == addrA {
			dialsA.Add(1)
			if err != nil {
				failedA.Add(1)
			}
		}
		return conn, err
	}
	// a first whenever it is listed; no ejection, so every call tries it.
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{a.instance("a"), b.instance("b")}, "echo",
		grpcclient.WithContextDialer(dialer),
		grpcclient.WithClientOptions(client.WithBalancer(newFirstPick()), client.WithoutOutlier()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := say(c, grpcclient.Idempotent()) // a call racing a's close may have been sent
	if got, err := call(ctx, "id"); err != nil || got != "a" {
		t.Fatalf("first call: %q, %v; want a", got, err)
	}

	// a goes away; calls (answered by b) make a's connection redial, and
	// it keeps redialing by itself while a is gone.
	a.Close()
	const failures = 6 // the next delay: 10.5 s ± 20% in grpc-go's backoff
	for failedA.Load() < failures {
		if ctx.Err() != nil {
			t.Fatalf("a's connection made %d failed dials in 90s, want %d", failedA.Load(), failures)
		}
		if got, err := call(ctx, "id"); err != nil || got != "b" {
			t.Fatalf("call with a down: %q, %v; want b", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// a comes back at the same address.
	a2 := startEcho(t, "a", grpcserver.WithAddr(addrA))
	back := time.Now()
	const within = 6 * time.Second // generous: the fix gives ~1 s; the stale backoff 8 s or more
	for a2.echo.Calls.Load() == 0 {
		if time.Since(back) > within {
			t.Fatalf("a back at %s, but no call reached it in %s (%d dials to it in all, %d failed): the connection kept the outage's backoff",
				addrA, within, dialsA.Load(), failedA.Load())
		}
		if _, err := call(ctx, "id"); err != nil {
			t.Fatalf("call while a comes back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
