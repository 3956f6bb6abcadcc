package grpcclient

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/tcpopt"
)

// TestDial_SetsTheUnackedTimeout: the dialer every instance's ClientConn
// uses sets TCP_USER_TIMEOUT, as the HTTP client's transport does (report
// j53a F1: a request in flight to an instance that vanished without a
// reset waited for the kernel).
func TestDial_SetsTheUnackedTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := dial(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := tcpopt.UserTimeoutOf(conn)
	if err != nil {
		t.Fatal(err)
	}
	if got != client.DefaultUnackedTimeout {
		t.Fatalf("TCP_USER_TIMEOUT = %v, want %v", got, client.DefaultUnackedTimeout)
	}
}

// TestFactory_DialsThroughDial: every instance's ClientConn connects
// through the client's dialer (dial unless a test swaps it), so the
// option above is on its connections.
func TestFactory_DialsThroughDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialled := make(chan string, 4)
	cfg := config{dialer: func(ctx context.Context, addr string) (net.Conn, error) {
		dialled <- addr
		return dial(ctx, addr)
	}}
	inst := registry.Instance{ID: "echo-1", Name: "echo", Endpoints: []string{"grpc://" + ln.Addr().String()}}
	_, closer, err := cfg.factory(inst)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	closer.(*grpc.ClientConn).Connect()
	select {
	case addr := <-dialled:
		if addr != ln.Addr().String() {
			t.Fatalf("dialled %s, want %s", addr, ln.Addr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the instance's ClientConn did not dial through the client's dialer within 10s")
	}
}

// TestWithContextDialer_SetsTheUnackedTimeout: a caller's dialer
// (WithContextDialer) gets TCP_USER_TIMEOUT set on the TCP connection it
// returns, as dial's own connections do.
func TestWithContextDialer_SetsTheUnackedTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := newConfig([]Option{WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer // sets no TCP_USER_TIMEOUT
		return d.DialContext(ctx, "tcp", addr)
	})})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cfg.instanceDialer()(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := tcpopt.UserTimeoutOf(conn); err != nil || got != client.DefaultUnackedTimeout {
		t.Fatalf("TCP_USER_TIMEOUT = %v, %v; want %v", got, err, client.DefaultUnackedTimeout)
	}
	if _, err := newConfig([]Option{WithContextDialer(nil)}); err == nil {
		t.Fatal("WithContextDialer(nil) accepted")
	}
}
