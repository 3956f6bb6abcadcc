package consul

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

func parseBackend(t *testing.T, args ...string) registry.Settings {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	all, err := registry.Backends{Backend()}.BindAll(fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return all[Name]
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
	inst := registry.Instance{ID: "backend-flags-1", Name: "backend-flags", Address: "127.0.0.1", Port: 8080}
	if err := r.Register(ctxT(t, 20*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	if r.(*Registry).cfg.ttl != 3*time.Second {
		t.Fatalf("ttl %s, want --consul-ttl", r.(*Registry).cfg.ttl)
	}
	svcs, err := r.(*Registry).Client().Agent().Services()
	if err != nil || svcs[inst.ID] == nil {
		t.Fatalf("agent services %v, %v", svcs, err)
	}
}

func TestBackend_BadFlagsAreNamedAndSecretsNeverPrinted(t *testing.T) {
	for args, want := range map[string]string{
		"--consul-ttl=100ms":  "--consul-ttl",
		"--consul-check=tcp":  "--consul-check",
		"--consul-addr=":      "--consul-addr",
		"--consul-cert=c.pem": "--consul-key",
	} {
		if err := parseBackend(t, args).Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to name %s", args, err, want)
		}
	}
	s := parseBackend(t, "--consul-token=s3cr3t", "--consul-datacenter=dc9")
	if got := fmt.Sprintf("%v %+v", s, s); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "dc9") {
		t.Fatalf("settings print as %s", got)
	}
}
