package tlsconf_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// handshake runs a real TLS handshake between srv and cli over loopback
// TCP (buffered, so neither side's alert blocks on the other), then one
// byte from the client to the server (TLS 1.3 reports a refused client
// certificate only on the server's first read). It returns the server's
// and the client's errors.
func handshake(t *testing.T, srv, cli *tls.Config) (srvErr, cliErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		a, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer a.Close()
		a.SetDeadline(deadline)
		s := tls.Server(a, srv)
		err = s.HandshakeContext(ctx)
		if err == nil {
			_, err = s.Read(make([]byte, 1))
		}
		done <- err
	}()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetDeadline(deadline)
	c := tls.Client(b, cli)
	cliErr = c.HandshakeContext(ctx)
	if cliErr == nil {
		_, cliErr = c.Write([]byte{1})
	}
	b.Close() // a client that gave up must not leave the server waiting
	srvErr = <-done
	return srvErr, cliErr
}

// security.md: the service's TLS is ≥ 1.2, on both sides, whatever Go's
// defaults become. A peer that only speaks TLS 1.1 gets no connection; the
// same peer against a config lowered to TLS 1.0 connects, so the refusal
// is the version floor and not something else about the peer.
func TestMinimumVersionIsTLS12BothWays(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue("127.0.0.1")
	srv, err := tlsconf.Server(p.CertFile, p.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cli.ServerName = "127.0.0.1"

	old := cli.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	lax := srv.Clone()
	lax.MinVersion = tls.VersionTLS10
	if se, ce := handshake(t, lax, old); se != nil || ce != nil {
		t.Fatalf("control: a TLS 1.1 client and a TLS 1.0 floor should connect: server %v, client %v", se, ce)
	}
	if se, ce := handshake(t, srv, old); se == nil || ce == nil {
		t.Errorf("tlsconf.Server accepted a TLS 1.1 client: server %v, client %v", se, ce)
	}

	oldSrv := lax.Clone()
	oldSrv.MaxVersion = tls.VersionTLS11
	laxCli := cli.Clone()
	laxCli.MinVersion = tls.VersionTLS10
	if se, ce := handshake(t, oldSrv, laxCli); se != nil || ce != nil {
		t.Fatalf("control: a TLS 1.1 server and a TLS 1.0 floor should connect: server %v, client %v", se, ce)
	}
	if se, ce := handshake(t, oldSrv, cli); se == nil || ce == nil {
		t.Errorf("tlsconf.Client accepted a TLS 1.1 server: server %v, client %v", se, ce)
	}
}

// A mutual-TLS server refuses a client without a certificate in the
// handshake, and SelfCheck (the server calling itself) gets in by
// presenting the server's own certificate.
func TestMutualTLS_RefusesAnonymousClientsAdmitsSelfCheck(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue("127.0.0.1")
	srv, err := tlsconf.Server(p.CertFile, p.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	anon, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	anon.ServerName = "127.0.0.1"
	if se, _ := handshake(t, srv, anon); se == nil {
		t.Error("the mTLS server admitted a client without a certificate")
	}
	if se, ce := handshake(t, srv, tlsconf.SelfCheck(srv)); se != nil || ce != nil {
		t.Errorf("self-check against its own mTLS server: server %v, client %v", se, ce)
	}
}
