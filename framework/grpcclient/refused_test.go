package grpcclient_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// refusingInstances returns n instance strings whose addresses refuse
// connections: each a port a listener held, then closed.
func refusingInstances(t *testing.T, ids ...string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // connection refused from now on
		out = append(out, registry.Instance{ID: id, Name: "echo", Endpoints: []string{"grpc://" + addr}}.String())
	}
	return out
}

// A refused connection (no process at the address: an instance that
// exited while a registry outage kept it listed) costs a gRPC call no
// attempt and no budget token, as over HTTP: with 4 refusing instances
// picked before the one live instance and 3 attempts, every call is
// answered. Counted as attempts (before the fix), each call ran out of
// them on the dead instances. Non-idempotent, without ejection, on the
// default budget.
func TestClient_RefusedInstancesSpendNoAttempts(t *testing.T) {
	live := startEcho(t, "e-live")
	src := sd.FixedInstancer(append(refusingInstances(t, "a-dead", "b-dead", "c-dead", "d-dead"), live.instance("e-live")))
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(
		client.WithBalancer(newFirstPick()), client.WithoutOutlier(),
		client.WithRetry(retry.WithMaxAttempts(3))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := say(c) // not idempotent
	for i := range 20 {
		id, err := call(ctx30(t), "id")
		if err != nil || id != "e-live" {
			t.Fatalf("call %d = %q, %v; want the live instance's answer after the refusals", i, id, err)
		}
	}
	if st := c.State(); st.RetriesRefused != 0 {
		t.Fatalf("state %+v: refusals spent the retry budget", st)
	}
}

// A caller's own dialer given with WithContextDialer keeps refusals free:
// grpcclient wraps it and records the ECONNREFUSED it returns, so with 4
// refusing instances before the live one and 3 attempts every call is
// answered, as with grpcclient's dialer. A raw grpc.WithContextDialer in
// the dial options loses the record (docs/grpc.md).
func TestClient_OwnDialerKeepsRefusalsFree(t *testing.T) {
	live := startEcho(t, "e-live")
	src := sd.FixedInstancer(append(refusingInstances(t, "a-dead", "b-dead", "c-dead", "d-dead"), live.instance("e-live")))
	var dials atomic.Int32
	own := func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithContextDialer(own), grpcclient.WithClientOptions(
		client.WithBalancer(newFirstPick()), client.WithoutOutlier(),
		client.WithRetry(retry.WithMaxAttempts(3))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := say(c) // not idempotent
	for i := range 20 {
		id, err := call(ctx30(t), "id")
		if err != nil || id != "e-live" {
			t.Fatalf("call %d = %q, %v; want the live instance's answer after the refusals", i, id, err)
		}
	}
	if dials.Load() == 0 {
		t.Fatal("the caller's dialer was never used")
	}
	if st := c.State(); st.RetriesRefused != 0 {
		t.Fatalf("state %+v: refusals spent the retry budget", st)
	}
}

// The refused attempt's error is checkable as HTTP's is
// (errors.Is(err, syscall.ECONNREFUSED)); a call to an instance that
// only refuses ends after retry.MaxRefusedFree free attempts plus its own.
func TestClient_RefusedAttemptIsECONNREFUSED(t *testing.T) {
	src := sd.FixedInstancer(refusingInstances(t, "dead"))
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(
		client.WithoutOutlier(), client.WithRetry(retry.WithMaxAttempts(3))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = say(c)(ctx30(t), "id")
	var re *retry.Error
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.Is(err, client.ErrUnreachable) || !errors.As(err, &re) {
		t.Fatalf("err = %v; want ECONNREFUSED, client.ErrUnreachable and the attempts", err)
	}
	if got, want := len(re.Attempts), retry.MaxRefusedFree+3; got != want {
		t.Fatalf("%d attempts, want %d (MaxRefusedFree free, then 3): %v", got, want, err)
	}
}

// Other UNAVAILABLEs are not refusals: a server's own (a handler's
// svcerr.Unavailable) and a connection the server cut before its preface
// (the dial succeeded) spend attempts and do not match ECONNREFUSED.
func TestClient_OtherUnavailableIsNotARefusal(t *testing.T) {
	a, b, cc := startEcho(t, "a"), startEcho(t, "b"), startEcho(t, "c")
	src := sd.FixedInstancer{a.instance("a"), b.instance("b"), cc.instance("c")}
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(
		client.WithoutOutlier(), client.WithRetry(retry.WithMaxAttempts(3))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = say(c, grpcclient.Idempotent())(ctx30(t), "fail:unavailable:down")
	var re *retry.Error
	if errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &re) || len(re.Attempts) != 3 {
		t.Fatalf("a server's UNAVAILABLE on every instance = %v; want 3 attempts, no ECONNREFUSED", err)
	}

	// A listener that accepts and closes at once: the dial succeeds, the
	// connection is cut before the server's preface.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { ln.Close(); <-done }()
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // ln closed
			}
			conn.Close()
		}
	}()
	cut := registry.Instance{ID: "cut", Name: "echo", Endpoints: []string{"grpc://" + ln.Addr().String()}}.String()
	c2, err := grpcclient.NewFromInstancer(sd.FixedInstancer{cut}, "echo", grpcclient.WithClientOptions(
		client.WithoutOutlier(), client.WithRetry(retry.WithMaxAttempts(3))))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, err = say(c2, grpcclient.Idempotent())(ctx30(t), "id") // retried, whether grpc-go saw the cut before or after sending
	if errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &re) || len(re.Attempts) != 3 {
		t.Fatalf("a connection cut before the preface = %v; want 3 attempts, no ECONNREFUSED", err)
	}
}
