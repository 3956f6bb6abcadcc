package zk

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
)

// mutedServer answers the connect handshake with a session and then
// nothing — not a ping, not a request: a partition without resets after
// the session began. It stops with the test.
func mutedServer(t *testing.T, session time.Duration) string {
	t.Helper()
	return fakeServer(t, nil, func(c net.Conn) {
		if readConnectRequest(c) != nil {
			return
		}
		buf := make([]byte, 256)
		l, err := encodePacket(buf[4:], &connectResponse{
			TimeOut: int32(session / time.Millisecond), SessionID: 0x1234, Passwd: make([]byte, 16),
		})
		if err != nil {
			t.Error(err)
			return
		}
		binary.BigEndian.PutUint32(buf[:4], uint32(l))
		if _, err := c.Write(buf[:4+l]); err != nil {
			return
		}
		drain(c)
	})
}

// The Context requests return when their ctx ends, with an error wrapping
// ctx.Err(), on a connection that stays open and silent; the plain ones
// wait for the read deadline (two thirds of the session timeout: 6.7 s
// here) — report j48c 2. CloseContext does not wait for the close
// request's answer past its ctx.
func TestContextRequests_ReturnWhenCtxEndsOnASilentConnection(t *testing.T) {
	const session = 10 * time.Second
	conn, _, err := Connect([]string{mutedServer(t, session)}, session, WithLogger(quietLogger{}), WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for deadline := time.Now().Add(10 * time.Second); conn.State() != StateHasSession; {
		if time.Now().After(deadline) {
			t.Fatalf("no session after 10s: state %s", conn.State())
		}
		time.Sleep(10 * time.Millisecond)
	}

	const budget, bound = 300 * time.Millisecond, 3 * time.Second
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"GetContext", func(ctx context.Context) error { _, _, err := conn.GetContext(ctx, "/a"); return err }},
		{"GetWContext", func(ctx context.Context) error { _, _, _, err := conn.GetWContext(ctx, "/a"); return err }},
		{"ChildrenWContext", func(ctx context.Context) error { _, _, _, err := conn.ChildrenWContext(ctx, "/a"); return err }},
		{"ExistsWContext", func(ctx context.Context) error { _, _, _, err := conn.ExistsWContext(ctx, "/a"); return err }},
		{"CreateContext", func(ctx context.Context) error {
			_, err := conn.CreateContext(ctx, "/a", nil, FlagEphemeral, WorldACL(PermAll))
			return err
		}},
		{"DeleteContext", func(ctx context.Context) error { return conn.DeleteContext(ctx, "/a", -1) }},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		start := time.Now()
		err := tc.call(ctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want one wrapping context.DeadlineExceeded", tc.name, err)
		}
		if took > bound {
			t.Errorf("%s returned after %s with a %s ctx; want within %s", tc.name, took.Round(time.Millisecond), budget, bound)
		}
	}
	if t.Failed() {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	conn.CloseContext(ctx)
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("CloseContext with a 100ms ctx took %s; want it not to wait for the answer (1 s) past its ctx", took.Round(time.Millisecond))
	}
}
