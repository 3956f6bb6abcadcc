package etcd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// docs/production.md and registry-etcd.md: --etcd-ttl, --etcd-request-timeout
// and --etcd-dial-timeout set the lease TTL, the bound on one attempt and
// the dial timeout. Their defaults and ranges were tested; that the values
// reach the Registry was not: Open dropping WithTTL, WithRequestTimeout or
// WithDialTimeout passed every test (a service given --etcd-ttl=20s, as
// production.md advises against a hung leader, kept 10 s leases).
func TestBackend_TimingFlagsReachTheRegistry(t *testing.T) {
	s := parseBackend(t, "--etcd-endpoints="+strings.Join(shared.Endpoints(), ","), "--etcd-prefix="+testPrefix(t),
		"--etcd-ttl=7s", "--etcd-request-timeout=3s", "--etcd-dial-timeout=4s")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(testCtx(t), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := r.(*Registry).cfg
	if cfg.ttl != 7*time.Second || cfg.requestTimeout != 3*time.Second || cfg.dialTimeout != 4*time.Second {
		t.Fatalf("registry ttl %s, request timeout %s, dial timeout %s; want the flags' 7s, 3s, 4s", cfg.ttl, cfg.requestTimeout, cfg.dialTimeout)
	}
}

// docs/production.md, "TLS and auth": --etcd-ca --etcd-cert --etcd-key give
// the registry TLS, --etcd-username and --etcd-password (WARREN_ETCD_PASSWORD) its etcd user.
// TestRegistry_TLSAndAuth checks the options; nothing checked the flags:
// Open dropping WithTLSFiles or WithAuth passed every test. On an etcd
// that asks for client certificates and a password, a registry opened
// from the flags registers; one lacking either is refused there.
func TestBackend_TLSAndAuthFlagsReachTheRegistry(t *testing.T) {
	ca := tlstest.NewCA(t)
	server, clientCert := ca.Issue("etcd"), ca.Issue("warren-client") // no etcd user has that CN
	srv := startTLSEtcd(t, ca, server)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	prefix := testPrefix(t)
	enableAuthAsAdmin(t, ctx, srv, ca, clientCert, prefix)

	s := parseBackend(t, "--etcd-endpoints="+strings.Join(srv.Endpoints(), ","), "--etcd-prefix="+prefix,
		"--etcd-ca="+ca.CertFile, "--etcd-cert="+clientCert.CertFile, "--etcd-key="+clientCert.KeyFile,
		"--etcd-username=svc", "--etcd-password=svc-pw", "--etcd-dial-timeout=15s", "--etcd-request-timeout=15s")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	inst := testInstance(4343)
	rctx, rcancel := context.WithTimeout(ctx, 45*time.Second)
	defer rcancel()
	if err := r.Register(rctx, inst); err != nil {
		t.Fatalf("register with the TLS and auth flags: %v", err)
	}
	if err := r.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
}
