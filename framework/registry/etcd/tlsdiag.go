package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// maxProbeTime bounds the whole diagnostic probe made after a failure,
// so explaining a failed attempt never costs much more than the attempt.
const maxProbeTime = 2 * time.Second

// explainNoConnection looks for why the client got no connection to any of
// endpoints: it dials them itself, as the client would (TLS with tlsCfg,
// plaintext for http://), and returns what it found, or nil if nothing
// explains the failure. clientv3 hides the cause (its log, which has the
// "latest balancer error", is off, and a request only says "context
// deadline exceeded") though etcd usually did answer: with a TLS alert, a
// certificate the client does not trust, or plaintext. The probe sends no
// credentials. It takes at most maxProbeTime (or timeout, if less).
func explainNoConnection(endpoints []string, tlsCfg *tls.Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), min(timeout, maxProbeTime))
	defer cancel()
	var findings []error
	for _, ep := range endpoints {
		if ctx.Err() != nil {
			break
		}
		if err := probeEndpoint(ctx, ep, tlsCfg); err != nil {
			findings = append(findings, err)
		}
	}
	return errors.Join(findings...)
}

// probeEndpoint is explainNoConnection for one endpoint.
func probeEndpoint(ctx context.Context, ep string, tlsCfg *tls.Config) error {
	scheme, addr := "", ep
	if s, _, ok := strings.Cut(ep, "://"); ok {
		u, err := url.Parse(ep)
		if err != nil || (s != "http" && s != "https") {
			return nil // unix sockets: not probed
		}
		scheme, addr = s, u.Host
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	var d net.Dialer
	began := time.Now()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // no answer in time: the original error says as much
		}
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A stopped or hung etcd: the kernel accepts, nobody answers. The
	// request's "context deadline exceeded" named no server (report j57b F7).
	silent := func() error {
		return fmt.Errorf("etcd at %s accepted the connection but did not answer within %s (stopped, hung or overloaded?)",
			addr, time.Since(began).Round(100*time.Millisecond))
	}
	// clientv3 uses TLS for https://, and for a bare host:port when TLS is
	// configured; for https:// without a configuration, the system's roots.
	useTLS := scheme == "https" || scheme == "" && tlsCfg != nil
	if !useTLS {
		err := probePlain(ctx, conn, addr, host)
		if errors.Is(err, errSilent) {
			return silent()
		}
		return err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tlsCfg != nil {
		cfg = tlsCfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host // what gRPC verifies: the endpoint's host
	}
	cfg.NextProtos = []string{"h2"}
	tc := tls.Client(conn, cfg)
	err = tc.HandshakeContext(ctx)
	if err == nil {
		// With TLS 1.3 the server checks the client's certificate after
		// the client's side of the handshake is done: its refusal is an
		// alert on the first read. A server content with us sends its
		// HTTP/2 settings instead, or nothing until the deadline.
		tc.SetReadDeadline(time.Now().Add(min(300*time.Millisecond, time.Until(deadline(ctx)))))
		_, err = tc.Read(make([]byte, 1))
		if err == nil || !isTLSAlert(err) {
			return nil
		}
	}
	var rh tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &rh):
		return fmt.Errorf("the server at %s does not speak TLS (%w); give its TLS port, or write http://%s without a CA or client certificate if it is meant to be plaintext", addr, err, addr)
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		// A plaintext gRPC server reads a ClientHello as a broken HTTP/2
		// preface and hangs up.
		return fmt.Errorf("the server at %s closed the connection at the TLS handshake (%w): it does not seem to speak TLS; give its TLS port, or write http://%s without a CA or client certificate if it is meant to be plaintext", addr, err, addr)
	case errors.As(err, &certErr) && (tlsCfg == nil || tlsCfg.RootCAs == nil):
		return fmt.Errorf("TLS handshake with %s failed: %w; no CA was given (--etcd-ca, WithTLSFiles), so the system's roots were used", addr, err)
	case isTLSAlert(err) && strings.Contains(err.Error(), "certificate required") && (tlsCfg == nil || len(tlsCfg.Certificates) == 0 && tlsCfg.GetClientCertificate == nil):
		return fmt.Errorf("TLS handshake with %s failed: %w; etcd asks for a client certificate (--etcd-cert, --etcd-key)", addr, err)
	case ctx.Err() != nil || isTimeout(err):
		return silent()
	}
	return fmt.Errorf("TLS handshake with %s failed: %w", addr, err)
}

// probePlain checks whether the server a plaintext client talks to
// speaks TLS, with a handshake that verifies nothing: it only learns what
// protocol answers, and sends nothing but a ClientHello.
func probePlain(ctx context.Context, conn net.Conn, addr, host string) error {
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: host, NextProtos: []string{"h2"}})
	err := tc.HandshakeContext(ctx)
	if err == nil || isTLSAlert(err) {
		return fmt.Errorf("the server at %s speaks TLS but the client does not: give a CA (--etcd-ca, WithTLSFiles) and write https://%s or %s", addr, addr, addr)
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		// It answered, in plaintext: is it etcd's client port at all?
		return probeGRPC(ctx, addr)
	}
	if ctx.Err() != nil || isTimeout(err) {
		return errSilent
	}
	return nil // it hung up: TLS is not the problem
}

// errSilent is probePlain's finding that the server said nothing at all.
var errSilent = errors.New("no answer")

// probeGRPC opens a plaintext HTTP/2 connection to addr, as gRPC does: an
// etcd client port answers the preface with a SETTINGS frame. Anything
// else (an HTTP/1 answer) is not etcd's client port — its peer port
// (2380) or another server — where the client only ever said "context
// deadline exceeded" (report j53d finding 7). No answer says nothing.
func probeGRPC(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil
	}
	defer conn.Close()
	conn.SetDeadline(deadline(ctx))
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	settings := []byte{0, 0, 0, 0x4, 0, 0, 0, 0, 0} // an empty SETTINGS frame
	if _, err := conn.Write(append([]byte(preface), settings...)); err != nil {
		return nil
	}
	b := make([]byte, 64)
	n, _ := io.ReadAtLeast(conn, b, 9)
	switch {
	case n >= 9 && b[3] == 0x4:
		return nil // HTTP/2: gRPC can talk to it
	case n == 0:
		return nil // closed or silent: nothing to say
	}
	answer, _, _ := strings.Cut(string(b[:n]), "\r\n")
	return fmt.Errorf("the server at %s is not an etcd client port: it does not speak gRPC (HTTP/2) and answered %q; "+
		"is it etcd's peer port (2380; clients use 2379) or another server?", addr, answer)
}

// isTLSAlert reports whether err is an alert the peer sent.
func isTLSAlert(err error) bool {
	return err != nil && strings.Contains(err.Error(), "remote error: tls:")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func deadline(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(maxProbeTime)
}
