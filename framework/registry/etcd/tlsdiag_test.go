package etcd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// etcd answers a wrong TLS setup with a TLS error, but clientv3 only
// reports that its time ran out ("no answer … within the dial timeout",
// "grant lease …: context deadline exceeded"), sending the operator to
// look for a firewall. The Registry probes the endpoint and says what
// etcd answered, on both paths: a client that authenticates (the error of
// its attempts) and one that does not (the registration's grant), and the
// error still matches context.DeadlineExceeded.
func TestTLS_FailuresSayWhatEtcdAnswered(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	server, clientCert := ca.Issue("etcd"), ca.Issue("warren-client")
	strange := other.Issue("warren-client")
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()), embedetcd.WithConfig(func(c *embed.Config) {
		c.ListenClientUrls[0].Scheme = "https"
		c.AdvertiseClientUrls[0].Scheme = "https"
		c.ClientTLSInfo = transport.TLSInfo{
			CertFile: server.CertFile, KeyFile: server.KeyFile,
			TrustedCAFile: ca.CertFile, ClientCertAuth: true,
		}
		c.BcryptCost = 4 // bcrypt.MinCost: see TestRegistry_TLSAndAuth
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel) // parallel subtests outlive the function
	prefix := testPrefix(t)
	{
		tc, err := tlsconf.Client(ca.CertFile, clientCert.CertFile, clientCert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		enableAuth(t, ctx, admin, prefix)
	}
	tlsEP, plainEP := srv.Endpoints()[0], shared.Endpoints()[0]
	auth := WithAuth("svc", "svc-pw")
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"plaintext client, TLS etcd", []Option{WithEndpoints(tlsEP)},
			"the server at " + tlsEP + " speaks TLS but the client does not"},
		{"plaintext client with a password, TLS etcd", []Option{WithEndpoints(tlsEP), auth},
			"the server at " + tlsEP + " speaks TLS but the client does not"},
		{"CA of another authority", []Option{WithEndpoints(tlsEP), WithTLSFiles(other.CertFile, clientCert.CertFile, clientCert.KeyFile), auth},
			"TLS handshake with " + tlsEP + " failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"https:// without a CA", []Option{WithEndpoints("https://" + tlsEP), auth},
			"no CA was given"},
		{"no client certificate", []Option{WithEndpoints(tlsEP), WithTLSFiles(ca.CertFile, "", ""), auth},
			"remote error: tls: certificate required; etcd asks for a client certificate"},
		{"client certificate of another authority", []Option{WithEndpoints(tlsEP), WithTLSFiles(ca.CertFile, strange.CertFile, strange.KeyFile)},
			"TLS handshake with " + tlsEP + " failed: remote error: tls:"},
		{"TLS client, plaintext etcd", []Option{WithEndpoints(plainEP), WithTLSFiles(ca.CertFile, clientCert.CertFile, clientCert.KeyFile)},
			plainEP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out its registration timeout
			base := []Option{WithPrefix(prefix), WithTTL(testTTL), WithBackoff(50*time.Millisecond, 500*time.Millisecond),
				WithDialTimeout(time.Second), WithRequestTimeout(time.Second)}
			r, err := New(ctx, append(base, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rctx, cancel := context.WithTimeout(ctx, 6*time.Second)
			defer cancel()
			err = r.Register(rctx, testInstance(4243))
			switch {
			case err == nil:
				t.Fatal("registered")
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q; want it to contain %q", err, tc.want)
			case !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("error %v does not match context.DeadlineExceeded", err)
			}
			t.Logf("%v", err)
		})
	}
}
