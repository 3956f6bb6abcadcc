package httpserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// Over mutual TLS the handler sees the connection's state (the caller's
// certificate), a caller refused in the handshake is logged with its
// address, and plain HTTP on the HTTPS port gets a 400 saying so — what
// net/http does for a *tls.Conn it serves itself, which the server's
// connections (wrapped for JSON errors) no longer are to it.
func TestTLS_HandlerSeesThePeerRefusalsAreLoggedPlainHTTPIsTold(t *testing.T) {
	ca := tlstest.NewCA(t)
	srvPair, callerPair := ca.Issue("svc"), ca.Issue("caller")
	srvTLS, err := tlsconf.Server(srvPair.CertFile, srvPair.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	peer := make(chan string, 1)
	s, err := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			peer <- "no TLS state"
			return
		}
		peer <- r.TLS.PeerCertificates[0].Subject.CommonName
	}), WithAddr("127.0.0.1:0"), WithTLS(srvTLS))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	h := host("n")
	h.Logger = log.NewLogfmtLogger(&logs)
	h.Handshakes = transport.NewHandshakeLog(h.Logger, time.Nanosecond) // every failure its own line, for this test
	addr, err := s.Listen(h)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cli, err := tlsconf.Client(ca.CertFile, callerPair.CertFile, callerPair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cli}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr.String()+"/who", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-peer; got != "caller" {
		t.Fatalf("handler saw %q; want the caller's certificate", got)
	}

	// No client certificate: refused in the handshake, and logged.
	noCert, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	noCert.ServerName = "127.0.0.1"
	c := tls.Client(conn, noCert)
	err = c.Handshake()
	if err == nil { // TLS 1.3: the refusal comes after the client's side is done
		_, err = c.Read(make([]byte, 1))
	}
	c.Close()
	if err == nil {
		t.Fatal("a caller without a certificate was served")
	}
	waitLog(t, &logs, "TLS handshake failed", conn.LocalAddr().String())

	// Plain HTTP on the HTTPS port.
	raw, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(raw, "GET /who HTTP/1.1\r\nHost: x\r\n\r\n")
	pr, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(pr.Body)
	if pr.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "https_required") {
		t.Fatalf("plain HTTP: %d %s; want 400 https_required", pr.StatusCode, body)
	}
	waitLog(t, &logs, "plain HTTP on the HTTPS port", raw.LocalAddr().String())
}

// waitLog waits (bounded) for a log line holding every part.
func waitLog(t *testing.T, logs *syncbuf.Buffer, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range strings.Split(logs.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(l, p)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", parts, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
