package consul

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// README.md and docs/registry-consul.md: --consul-token (an ACL token),
// --consul-datacenter, --consul-failover-datacenters and --consul-ca
// --consul-cert --consul-key (HTTPS to the agent) configure the registry.
// TestBackend_CheckFlagsReachTheAgent follows the check flags and
// --consul-allow-stale into the Registry; these four were followed by no
// test: Open dropping WithToken, WithDatacenter, WithFailover or WithTLS
// passed every test (a service given an ACL token would have talked to
// the agent anonymously; one given a CA, in plain HTTP).
func TestBackend_TokenDatacenterFailoverAndTLSFlagsReachTheRegistry(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert := ca.Issue("warren-client")
	s := parseBackend(t, "--consul-addr=127.0.0.1:8501", "--consul-token=guard-token", "--consul-datacenter=dc1",
		"--consul-failover-datacenters=dc2,dc3", "--consul-ca="+ca.CertFile, "--consul-cert="+cert.CertFile, "--consul-key="+cert.KeyFile)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := s.Open(ctx, registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := r.(*Registry).cfg
	if cfg.token != "guard-token" {
		t.Error("--consul-token did not reach the registry")
	}
	if cfg.datacenter != "dc1" {
		t.Errorf("datacenter %q, want --consul-datacenter's dc1", cfg.datacenter)
	}
	if !slices.Equal(cfg.failover, []string{"dc2", "dc3"}) {
		t.Errorf("failover %q, want --consul-failover-datacenters' dc2,dc3", cfg.failover)
	}
	want := TLSConfig{CAFile: ca.CertFile, CertFile: cert.CertFile, KeyFile: cert.KeyFile}
	if cfg.tls != want || cfg.scheme != "https" {
		t.Errorf("TLS %+v scheme %q, want %+v over https", cfg.tls, cfg.scheme, want)
	}
}
