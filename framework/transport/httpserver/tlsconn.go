package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/warren-mesh/warren/framework/transport"
)

// The server wraps each TLS connection for JSONErrors, so net/http, which
// only recognises a *tls.Conn, no longer does what it does for one: set
// Request.TLS, log failed handshakes and answer plain HTTP on the HTTPS
// port with a 400. tlsListener and withTLSState do those here.

// tlsListener accepts TLS connections that report their failed handshake.
type tlsListener struct {
	net.Listener // a tls.NewListener
	handshakes   *transport.HandshakeLog
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: c.(*tls.Conn), handshakes: l.handshakes}, nil
}

// tlsConn is a server's TLS connection. Its first read runs the handshake
// (tls.Conn does it on first use); a failure is reported, once, to the
// handshake log, which throttles the lines: any peer can fail handshakes
// as fast as it can connect.
type tlsConn struct {
	*tls.Conn
	handshakes *transport.HandshakeLog
	shook      atomic.Bool // handshake done or its failure reported
}

// NetConn returns the TLS connection, for what needs it (withTLSState).
func (c *tlsConn) NetConn() net.Conn { return c.Conn }

func (c *tlsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.shook.Load() {
		c.shook.Store(true)
		if err != nil && !c.ConnectionState().HandshakeComplete {
			c.handshakeFailed(err)
		}
	}
	return n, err
}

// errPlainHTTP is the reason reported for plain HTTP sent to the HTTPS port.
var errPlainHTTP = errors.New("plain HTTP on the HTTPS port")

// handshakeFailed reports a failed handshake and answers plain HTTP sent
// to the HTTPS port, as net/http does for a *tls.Conn it serves itself.
func (c *tlsConn) handshakeFailed(err error) {
	if errors.Is(err, io.EOF) { // a probe that connected and left: nothing to say
		return
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n"+
			`{"error":"client sent an HTTP request to an HTTPS server","code":"https_required"}`+"\n")
		err = errPlainHTTP
	}
	c.handshakes.Failed("http", c.RemoteAddr(), err)
}

// looksLikeHTTP reports whether a record header is the start of an HTTP
// request (net/http's tlsRecordHeaderLooksLikeHTTP).
func looksLikeHTTP(h [5]byte) bool {
	switch string(h[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

type tlsConnKey struct{}

// connContext puts the connection's TLS side in its requests' context
// (http.Server.ConnContext), for withTLSState.
func connContext(ctx context.Context, c net.Conn) context.Context {
	for c != nil {
		if tc, ok := c.(*tlsConn); ok {
			return context.WithValue(ctx, tlsConnKey{}, tc.Conn)
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = nc.NetConn()
	}
	return ctx
}

// withTLSState sets Request.TLS, the connection's state — the client's
// verified certificate chain under mutual TLS among it — for handlers.
func withTLSState(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tc, ok := r.Context().Value(tlsConnKey{}).(*tls.Conn); ok && r.TLS == nil {
			cs := tc.ConnectionState()
			r = r.WithContext(r.Context()) // a copy: the server's request stays as it was
			r.TLS = &cs
		}
		next.ServeHTTP(w, r)
	})
}
