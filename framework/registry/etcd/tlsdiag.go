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
	// clientv3 uses TLS for https://, and for a bare host:port when TLS is
	// configured; for https:// without a configuration, the system's roots.
	useTLS := scheme == "https" || scheme == "" && tlsCfg != nil
	if !useTLS {
		return probePlain(ctx, conn, addr, host)
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
		return nil
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
	return nil // plaintext (or silent): TLS is not the problem
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
