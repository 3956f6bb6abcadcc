package grpcclient_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// A call that began while its instance's connection was in
// TRANSIENT_FAILURE, but was sent once the connection was back, and then
// lost with the connection mid-call, may have been acted on: a call that
// is not idempotent is not retried on another instance. (The state seen
// when the call began said "not sent", and the call ran on both.)
func TestClient_ACallSentAfterTheConnectionCameBackIsNotTakenForUnsent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := startEcho(t, "a"), startEcho(t, "b")
	addrA := strings.TrimPrefix(a.ep, "grpc://")
	var failedA atomic.Int64
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if addr == addrA && err != nil {
			failedA.Add(1)
		}
		return conn, err
	}
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{a.instance("a"), b.instance("b")}, "echo",
		grpcclient.WithContextDialer(dialer),
		grpcclient.WithClientOptions(client.WithBalancer(newFirstPick()), client.WithoutOutlier()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	probe := say(c, grpcclient.Idempotent())

	// a goes away until its connection has failed a dial (TRANSIENT_FAILURE).
	a.Close()
	for failedA.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("a's connection never failed a dial")
		}
		if _, err := probe(ctx, "id"); err != nil {
			t.Fatalf("call with a down: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A call that is not idempotent fails fast on a's failed connection,
	// surely unsent: it is retried on b.
	if got, err := say(c)(ctx, "id"); err != nil || got != "b" {
		t.Fatalf("call on a's failed connection: %q, %v; want b's answer", got, err)
	}

	// A call that is not idempotent begins now, on a's failed connection;
	// its encoder holds it until the connection is back.
	entered, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	held := grpcclient.NewEndpoint(c, grpctest.SayMethod,
		func(_ context.Context, r any) (any, error) {
			if once.CompareAndSwap(false, true) {
				close(entered)
				select {
				case <-release:
				case <-time.After(45 * time.Second):
				}
			}
			return wrapperspb.String(r.(string)), nil
		},
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{})
	type result struct {
		out any
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := held(ctx, "on:a:sleep:40s") // a handler that runs until a is stopped; b answers at once
		done <- result{out, err}
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the held call never began")
	}

	// a comes back; an idempotent call it answers proves the connection READY.
	a2 := startEcho(t, "a", grpcserver.WithAddr(addrA))
	for {
		if ctx.Err() != nil {
			t.Fatal("a never answered after coming back")
		}
		if got, err := probe(ctx, "id"); err == nil && got == "a" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	base, bBase := a2.echo.Calls.Load(), b.echo.Calls.Load()
	close(release)
	for a2.echo.Calls.Load() == base { // the held call is running on a
		if ctx.Err() != nil {
			t.Fatal("the held call never reached a")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a2.Close() // cuts it mid-call

	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("the held call did not return")
	}
	if n := b.echo.Calls.Load() - bBase; n != 0 || r.err == nil {
		t.Fatalf("the call was cut on a after it was sent, and then retried on b (b ran it %d time(s); result %v, %v): a call that is not idempotent ran twice", n, r.out, r.err)
	}
	var ge *grpcclient.Error
	if !errors.As(r.err, &ge) || ge.NotSent {
		t.Fatalf("err = %v; want a *grpcclient.Error with NotSent false", r.err)
	}
}
