package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/internal/tcpopt"
)

// WithContextDialer makes every instance's connection through f (a
// proxy, a custom resolver of the instance's address, a socket option of
// the caller's) and keeps what grpcclient's own dialer gives: a refused
// dial (ECONNREFUSED in f's error) is recorded, so the attempt is free as
// over HTTP, and a *net.TCPConn f returns gets TCP_USER_TIMEOUT =
// client.DefaultUnackedTimeout on Linux (replacing any f set). A raw
// grpc.WithContextDialer among WithDialOptions replaces the dialer and
// loses both.
func WithContextDialer(f func(ctx context.Context, addr string) (net.Conn, error)) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("grpcclient.WithContextDialer(nil)")
		}
		c.dialer = f
		return nil
	}
}

// instanceDialer is the dialer of every instance's connection, before
// noting: dial, or the caller's (WithContextDialer) with the unacked
// timeout set on what it returns.
func (cfg config) instanceDialer() func(context.Context, string) (net.Conn, error) {
	f := cfg.dialer
	if f == nil {
		return dial
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := f(ctx, addr)
		if err != nil {
			return nil, err
		}
		if err := setUnackedTimeout(conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("grpc client: dial %s: %w", addr, err)
		}
		return conn, nil
	}
}

// setUnackedTimeout sets TCP_USER_TIMEOUT on a TCP connection, as dial
// does on its own; another kind of conn (an in-memory pipe, a tunnel, a
// Unix socket) is left as it is, as is every conn where the option does
// not exist.
func setUnackedTimeout(conn net.Conn) error {
	ctl := tcpopt.UserTimeout(client.DefaultUnackedTimeout)
	tc, ok := conn.(*net.TCPConn)
	if ctl == nil || !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	return ctl("tcp", tc.RemoteAddr().String(), raw)
}
