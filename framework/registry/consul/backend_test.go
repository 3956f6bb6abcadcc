package consul

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

func parseBackend(t *testing.T, args ...string) registry.Settings {
	t.Helper()
	return registrytest.ParseBackend(t, Backend(), args...)
}

func TestBackend_OpensARegistryFromItsFlags(t *testing.T) {
	a := needAgent(t)
	s := parseBackend(t, "--consul-addr="+a.Addr(), "--consul-ttl=3s")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctxT(t, 20*time.Second), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	inst := registry.Instance{ID: "backend-flags-1", Name: "backend-flags", Endpoints: []string{"http://127.0.0.1:8080"}}
	if err := r.Register(ctxT(t, 20*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	if ttl, ok := r.(*Registry).cfg.ttlCheck(); !ok || ttl.TTL != 3*time.Second {
		t.Fatalf("ttl check %+v, %v; want one with --consul-ttl", ttl, ok)
	}
	svcs, err := r.(*Registry).Client().Agent().Services()
	if err != nil || svcs[inst.ID] == nil {
		t.Fatalf("agent services %v, %v", svcs, err)
	}
}

func TestBackend_BadFlagsAreNamedAndSecretsNeverPrinted(t *testing.T) {
	for args, want := range map[string]string{
		"--consul-ttl=100ms":                     "--consul-ttl",
		"--consul-check=script":                  "--consul-check",
		"--consul-check=ttl,ttl":                 "--consul-check",
		"--consul-check=":                        "--consul-check",
		"--consul-check-interval=500ms":          "--consul-check-interval",
		"--consul-check-timeout=11s":             "--consul-check-timeout",
		"--consul-deregister-critical-after=-1s": "--consul-deregister-critical-after",
		"--consul-addr=":                         "--consul-addr",
		"--consul-cert=c.pem":                    "--consul-key",
	} {
		if err := parseBackend(t, args).Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to name %s", args, err, want)
		}
	}
	// Its own datacenter as a failover: silently never failing over
	// (report j48d).
	if err := parseBackend(t, "--consul-datacenter=dc1", "--consul-failover-datacenters=dc2,dc1").Validate(); err == nil ||
		!strings.Contains(err.Error(), `--consul-failover-datacenters: "dc1" is the own --consul-datacenter`) {
		t.Errorf("own datacenter as a failover: err = %v", err)
	}
	s := parseBackend(t, "--consul-token=s3cr3t", "--consul-datacenter=dc9")
	if got := fmt.Sprintf("%v %+v", s, s); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "dc9") {
		t.Fatalf("settings print as %s", got)
	}
}

// An agent address with credentials in it is refused, by the flags'
// Validate (exit 2, naming the flag) and by New, and neither refusal
// repeats the credentials: the error is logged.
func TestBackend_CredentialsInTheAddressAreRefusedUnrepeated(t *testing.T) {
	for _, addr := range []string{"http://admin:PWinURL2@127.0.0.1:1", "https://PWinURL2@127.0.0.1:1", "http://127.0.0.1:1/?token=PWinURL2", "admin:PWinURL2@127.0.0.1:1"} {
		err := parseBackend(t, "--consul-addr="+addr).Validate()
		if err == nil || strings.Contains(err.Error(), "PWinURL2") || !strings.Contains(err.Error(), "--consul-addr") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("--consul-addr=%s: %v; want refused, naming the flag, the credentials masked", addr, err)
		}
		if _, err := New(context.Background(), WithAddress(addr)); err == nil || strings.Contains(err.Error(), "PWinURL2") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("New(WithAddress(%s)): %v; want refused, the credentials masked", addr, err)
		}
	}
	if s := fmt.Sprint(parseBackend(t, "--consul-addr=http://admin:PWinURL2@127.0.0.1:1")); strings.Contains(s, "PWinURL2") {
		t.Errorf("settings print as %s", s)
	}
}

func TestBackend_CheckFlagsReachTheAgent(t *testing.T) {
	a := needAgent(t)
	srv := startCheckedServer(t, CheckTCP)
	s := parseBackend(t, "--consul-addr="+a.Addr(), "--consul-check=ttl, tcp", "--consul-ttl=3s",
		"--consul-check-interval=2s", "--consul-check-timeout=1s", "--consul-deregister-critical-after=90s",
		"--consul-check-tls-server-name=svc.internal", "--consul-check-tls-skip-verify")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctxT(t, 20*time.Second), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := []Check{
		{Kind: CheckTTL, TTL: 3 * time.Second, Interval: 2 * time.Second, Timeout: time.Second, Path: DefaultHealthPath},
		{Kind: CheckTCP, TTL: 3 * time.Second, Interval: 2 * time.Second, Timeout: time.Second, Path: DefaultHealthPath},
	}
	cfg := r.(*Registry).cfg
	if !slices.Equal(cfg.checks, want) || cfg.deregCritical != 90*time.Second || cfg.allowStale {
		t.Fatalf("checks %+v, deregister after %s, allow stale %t; want %+v, 90s, false", cfg.checks, cfg.deregCritical, cfg.allowStale, want)
	}
	inst := srv.instance("backend-checks-1", "backend-checks")
	if err := r.Register(ctxT(t, 20*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	checks, err := r.(*Registry).Client().Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	for id, typ := range map[string]string{checkID(inst.ID, CheckTTL): "ttl", checkID(inst.ID, CheckTCP): "tcp"} {
		if c := checks[id]; c == nil || c.Type != typ {
			t.Errorf("agent check %s = %+v, want type %s", id, c, typ)
		}
	}
	waitCheck(t, r.(*Registry), inst.Name, checkID(inst.ID, CheckTCP), "passing")

	// --consul-allow-stale reaches the registry's instancers.
	s = parseBackend(t, "--consul-addr="+a.Addr(), "--consul-allow-stale")
	rs, err := s.Open(ctxT(t, 20*time.Second), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if !rs.(*Registry).cfg.allowStale {
		t.Error("--consul-allow-stale did not reach the registry")
	}

	// TLS settings go to the kinds that use them.
	s = parseBackend(t, "--consul-check=http,grpc,tcp", "--consul-check-tls-server-name=svc.internal", "--consul-check-tls-skip-verify")
	cs, err := s.(*settings).checks()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		wantTLS := CheckTLS{}
		if c.Kind != CheckTCP {
			wantTLS = CheckTLS{ServerName: "svc.internal", SkipVerify: true}
		}
		if c.TLS != wantTLS {
			t.Errorf("%s check TLS = %+v, want %+v", c.Kind, c.TLS, wantTLS)
		}
	}
}
