package httptransport

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
)

// JSONErrors wraps a server's listener so the answers net/http writes by
// itself, before any handler runs — 400 for a malformed request, 431 for
// headers over MaxHeaderBytes, 505, 501 — are JSON error bodies like every
// other error (docs/http.md), not text/plain. net/http offers no hook for
// them; it writes each in one Write on the raw connection with a fixed
// header block, which is what is recognised and rewritten here. Anything
// else passes through untouched.
func JSONErrors(ln net.Listener) net.Listener { return jsonErrListener{ln} }

type jsonErrListener struct{ net.Listener }

func (l jsonErrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrConn{Conn: c}, nil
}

// jsonErrConn rewrites net/http's own error answers.
type jsonErrConn struct{ net.Conn }

// NetConn returns the wrapped connection, as tls.Conn does, so that what
// needs the socket (the load shedder's count of unread requests) finds it.
func (c *jsonErrConn) NetConn() net.Conn { return c.Conn }

// errorHeaders is the header block net/http puts on its own error answers
// (net/http/server.go); a handler's answer always has a Date header, so it
// never matches.
var errorHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

func (c *jsonErrConn) Write(p []byte) (int, error) {
	if len(p) > 512 || !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return c.Conn.Write(p)
	}
	i := bytes.Index(p, errorHeaders)
	if i < 0 || i != bytes.IndexByte(p, '\r') { // not "status line + the error header block"
		return c.Conn.Write(p)
	}
	statusLine := string(p[len("HTTP/1.1 "):i]) // "431 Request Header Fields Too Large"
	code, text, _ := bytesCut(statusLine)
	status, err := strconv.Atoi(code)
	if err != nil || status < 400 {
		return c.Conn.Write(p)
	}
	msg := string(p[i+len(errorHeaders):])
	if msg == "" {
		msg = text
	}
	body, _ := json.Marshal(ErrorBody{Error: msg, Code: netHTTPCode(status)})
	out := []byte("HTTP/1.1 " + statusLine + "\r\nContent-Type: application/json; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)+1) + "\r\n\r\n")
	out = append(append(out, body...), '\n')
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func bytesCut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// netHTTPCode names net/http's own refusals.
func netHTTPCode(status int) string {
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return "headers_too_large"
	case http.StatusBadRequest:
		return "malformed_request"
	case http.StatusHTTPVersionNotSupported:
		return "http_version_not_supported"
	case http.StatusNotImplemented:
		return "not_implemented"
	}
	return "bad_request"
}
