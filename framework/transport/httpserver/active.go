package httpserver

import (
	"net"
	"net/http"
	"sync/atomic"
)

// The drain's "nothing cut" check (Shutdown) needs every request under
// way, not only the service's handlers (inFlight): a health check being
// answered, and an answer whose handler has returned while net/http's
// last flush waits on a slow reader, are requests too. net/http knows
// them as connections in StateActive, but says only which state a
// connection enters, not which it leaves, and keeping a map of
// connections would cost a lock per request. So each accepted
// connection carries its own flag, and the ConnState hook keeps the count
// with an atomic swap and add: two of each per kept-alive request.

// activeListener wraps each accepted connection in an activeConn.
type activeListener struct{ net.Listener }

func (l activeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &activeConn{Conn: c}, nil
}

// activeConn is a connection that knows whether it has a request under
// way (http.StateActive).
type activeConn struct {
	net.Conn
	active atomic.Bool
}

// NetConn returns the wrapped connection, for what needs the socket (the
// load shedder) or the TLS side (connContext).
func (c *activeConn) NetConn() net.Conn { return c.Conn }

// countActive is the ConnState hook's part that keeps s.active: a
// connection counts from StateActive until it leaves it (idle, hijacked —
// counted as such — or closed).
func (s *Server) countActive(c net.Conn, st http.ConnState) {
	ac, ok := c.(*activeConn)
	if !ok {
		return
	}
	on := st == http.StateActive
	if ac.active.Swap(on) == on {
		return
	}
	if on {
		s.active.Add(1)
	} else {
		s.active.Add(-1)
	}
}
