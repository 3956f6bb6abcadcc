package etcd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// TestRegistry_TLSAndAuth runs an etcd that requires client certificates
// (TLS) and user/password auth with a role limited to the registry's
// prefix, and checks that our registry with the CA, a certificate and the
// password registers and discovers, and that every registry lacking one of
// them is refused.
func TestRegistry_TLSAndAuth(t *testing.T) {
	ca := tlstest.NewCA(t)
	server, clientCert := ca.Issue("etcd"), ca.Issue("warren-client") // no etcd user has that CN
	srv := startTLSEtcd(t, ca, server)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	prefix := testPrefix(t)
	enableAuthAsAdmin(t, ctx, srv, ca, clientCert, prefix)

	inst := testInstance(4242)
	// tryRegister fails in New or in Register (where a refused
	// authentication shows: New does not wait for etcd).
	tryRegister := func(opts ...Option) error {
		base := []Option{WithEndpoints(srv.Endpoints()...), WithPrefix(prefix), WithTTL(testTTL), WithDialTimeout(3 * time.Second), WithRequestTimeout(3 * time.Second)}
		r, err := New(ctx, append(base, opts...)...)
		if err != nil {
			return err
		}
		defer r.Close()
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err = r.Register(rctx, inst); err == nil {
			r.Deregister(ctx, inst)
		}
		return err
	}
	withCert := WithTLSFiles(ca.CertFile, clientCert.CertFile, clientCert.KeyFile)
	for _, tc := range []struct {
		name string
		opts []Option
		want string // in the error, when etcd answered: who it took us for
	}{
		{"plain connection", []Option{WithAuth("svc", "svc-pw")}, ""},
		{"CA but no client certificate", []Option{WithTLSFiles(ca.CertFile, "", ""), WithAuth("svc", "svc-pw")}, ""},
		{"certificate but no password", []Option{withCert}, "etcd took the client certificate's CN as the user"},
		{"certificate and a wrong password", []Option{withCert, WithAuth("svc", "nope")}, ""},
		{"a user whose role does not cover the prefix", []Option{withCert, WithAuth("svc", "svc-pw"), WithPrefix(prefix + "-other")},
			`as etcd user "svc": none of its roles grants this request under /` + prefix + "-other/"},
	} {
		err := tryRegister(tc.opts...)
		switch {
		case err == nil:
			t.Errorf("%s: registered, want refused", tc.name)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: refused with %q, want it to say %q", tc.name, err, tc.want)
		case tc.want != "" && !errors.Is(err, rpctypes.ErrPermissionDenied):
			t.Errorf("%s: %v is not rpctypes.ErrPermissionDenied", tc.name, err)
		default:
			t.Logf("%s: refused: %v", tc.name, err)
		}
	}

	// Everything given: register and discover.
	// Generous timeouts: a refusal above may be a timeout, success here
	// must not depend on the machine's load.
	r, _ := newTestRegistry(t, srv, prefix,
		WithTLSFiles(ca.CertFile, clientCert.CertFile, clientCert.KeyFile), WithAuth("svc", "svc-pw"),
		WithDialTimeout(15*time.Second), WithRequestTimeout(15*time.Second))
	if err := r.Register(ctx, inst); err != nil {
		t.Fatalf("register over TLS with auth: %v", err)
	}
	in, err := r.Instancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	waitFor(t, 5*time.Second, "the instance in discovery", func() bool { return hasExactly(in.(*Instancer), inst) })
}

// enableAuth makes a root user, a user "svc" (password "svc-pw") whose
// role may read and write under /prefix/ only, and turns auth on.
// startTLSEtcd starts an etcd that serves clients over TLS with server's
// certificate and asks each for a certificate from ca.
func startTLSEtcd(t *testing.T, ca *tlstest.CA, server tlstest.Pair) *embedetcd.Server {
	t.Helper()
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()), embedetcd.WithConfig(func(c *embed.Config) {
		c.ListenClientUrls[0].Scheme = "https"
		c.AdvertiseClientUrls[0].Scheme = "https"
		c.ClientTLSInfo = transport.TLSInfo{
			CertFile: server.CertFile, KeyFile: server.KeyFile,
			TrustedCAFile: ca.CertFile, ClientCertAuth: true,
		}
		// bcrypt's default cost takes seconds per password under -race on
		// a loaded machine; the tests are about who gets in, not hashing.
		c.BcryptCost = 4 // bcrypt.MinCost
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// enableAuthAsAdmin connects to srv with cert (whose CN is no etcd user,
// so it is root until auth is on) and sets up enableAuth's users and roles.
func enableAuthAsAdmin(t *testing.T, ctx context.Context, srv *embedetcd.Server, ca *tlstest.CA, cert tlstest.Pair, prefix string) {
	t.Helper()
	tc, err := tlsconf.Client(ca.CertFile, cert.CertFile, cert.KeyFile)
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

func enableAuth(t *testing.T, ctx context.Context, admin *clientv3.Client, prefix string) {
	t.Helper()
	steps := []func() error{
		func() error { _, err := admin.RoleAdd(ctx, "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "warren"); return err },
		func() error {
			key := "/" + prefix + "/"
			_, err := admin.RoleGrantPermission(ctx, "warren", key, clientv3.GetPrefixRangeEnd(key), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "svc", "svc-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "svc", "warren"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("etcd auth setup step %d: %v", i, err)
		}
	}
}
