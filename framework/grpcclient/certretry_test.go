package grpcclient_test

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// attempts is how many attempts a failed call made (retry.Error lists
// them; a single attempt's error comes back alone).
func attempts(err error) int {
	var re *retry.Error
	if errors.As(err, &re) {
		return len(re.Attempts)
	}
	return 1
}

// callTLS makes one call, three attempts allowed, to the instance at
// endpoint with cfg, and returns its error.
func callTLS(t *testing.T, endpoint string, cfg *tls.Config) error {
	t.Helper()
	inst := registry.Instance{ID: "tls", Name: "echo", Endpoints: []string{endpoint}}.String()
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{inst}, "echo", grpcclient.WithTLS(cfg),
		grpcclient.WithClientOptions(client.WithoutOutlier(), client.WithRetry(retry.WithMaxAttempts(3))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = say(c)(ctx30(t), "id")
	if err == nil {
		t.Fatal("the call succeeded")
	}
	return err
}

// A TLS handshake that fails on a certificate — one the client cannot
// verify (another CA, a name the certificate does not cover) or the
// client's own refused by the server during the handshake (TLS 1.2; under
// TLS 1.3 the refusal arrives after it) — sent nothing: a call that is not
// idempotent is retried like one whose connection was refused (here on
// the one instance there is, so every attempt fails the same, the reason
// in each).
func TestClient_CertificateFailuresAreRetriedForAnyCall(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	srv := ca.Issue("server")
	server := func(p tlstest.Pair, clientCA string) *tls.Config {
		cfg, err := tlsconf.Server(p.CertFile, p.KeyFile, clientCA)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	mTLS12 := server(srv, ca.CertFile)
	mTLS12.MaxVersion = tls.VersionTLS12
	for _, tc := range []struct {
		name   string
		server *tls.Config
		ca     string
		cert   tlstest.Pair
	}{
		{"unknown authority", server(srv, ""), other.CertFile, tlstest.Pair{}},
		{"name not in the certificate", server(ca.IssueFor("wrong", "foo.example"), ""), ca.CertFile, tlstest.Pair{}},
		{"client certificate from another CA, TLS 1.2", mTLS12, ca.CertFile, other.Issue("stranger")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startEcho(t, "tls", grpcserver.WithTLS(tc.server))
			cfg, err := tlsconf.Client(tc.ca, tc.cert.CertFile, tc.cert.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			err = callTLS(t, s.ep, cfg)
			var ge *grpcclient.Error
			if n := attempts(err); n != 3 || !errors.As(err, &ge) || ge.RetryClass() != retry.Unprocessed {
				t.Fatalf("%d attempts, %v; want 3 attempts of a call (not idempotent) that was never sent", n, err)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nobody listens there now
		cfg, err := tlsconf.Client(ca.CertFile, "", "")
		if err != nil {
			t.Fatal(err)
		}
		// Retried too (a refused connection may be accepted on the next
		// attempt), and free as over HTTP: MaxRefusedFree attempts, then 3.
		if err := callTLS(t, "grpcs://"+addr, cfg); attempts(err) != retry.MaxRefusedFree+3 {
			t.Fatalf("%d attempts, %v; want %d: refusals spend no attempt up to retry.MaxRefusedFree", attempts(err), err, retry.MaxRefusedFree+3)
		}
	})
}

// One instance with a certificate callers cannot verify (renewed late,
// issued by the wrong CA) costs a call that is not idempotent nothing: the
// handshake sent nothing, so the attempt goes to another instance.
func TestClient_AnInstanceWithABadCertificateIsPassedOverForAnyCall(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	pair := ca.Issue("good")
	good, err := tlsconf.Server(pair.CertFile, pair.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	stranger := other.Issue("bad")
	bad, err := tlsconf.Server(stranger.CertFile, stranger.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	g, b := startEcho(t, "good", grpcserver.WithTLS(good)), startEcho(t, "bad", grpcserver.WithTLS(bad))
	cfg, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{g.instance("good"), b.instance("bad")}, "echo", grpcclient.WithTLS(cfg),
		grpcclient.WithClientOptions(client.WithoutOutlier(), client.WithBalancer(balancer.NewRoundRobin())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 10 {
		if id, err := say(c)(ctx30(t), "id"); err != nil || id != "good" {
			t.Fatalf("call %d: %q, %v; want every call answered by the instance with a good certificate", i, id, err)
		}
	}
}
