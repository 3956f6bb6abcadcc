package consul

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// TestRegistry_CheckTLSOptionsReachTheAgent probes an HTTPS instance whose
// certificate comes from a CA the agent does not know: verified, the check
// is critical; with TLS.SkipVerify it passes.
func TestRegistry_CheckTLSOptionsReachTheAgent(t *testing.T) {
	a := needAgent(t)
	ca := tlstest.NewCA(t)
	pair := ca.Issue("svc")
	conf, err := tlsconf.Server(pair.CertFile, pair.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := startTLSCheckedServer(t, CheckHTTP, conf)
	for _, c := range []struct {
		name string
		tls  CheckTLS
		want string
	}{
		{"verified", CheckTLS{}, api.HealthCritical},
		{"skip-verify", CheckTLS{SkipVerify: true}, api.HealthPassing},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRegistry(t, a.Addr(), WithChecks(Check{Kind: CheckHTTP, Interval: time.Second, Timeout: time.Second, TLS: c.tls}))
			inst := srv.instance("tls-"+c.name, "tls-"+c.name)
			if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
				t.Fatal(err)
			}
			// Critical is the initial state: wait for a probe's verdict.
			waitCheckOutput(t, r, checkID(inst.ID, CheckHTTP), c.want)
		})
	}
}

// TestRegistry_MTLSInstanceIsProbedOnlyByAnAgentWithTLSForChecks serves
// an instance that requires client certificates. An agent without
// enable_agent_tls_for_checks has none to show: its HTTP check stays
// critical, and so does its gRPC check of a grpcs endpoint, while a TCP
// check (a bare connect) passes. An agent with enable_agent_tls_for_checks
// and a certificate from the mesh CA passes the HTTP and gRPC checks,
// verifying the instance against that CA.
func TestRegistry_MTLSInstanceIsProbedOnlyByAnAgentWithTLSForChecks(t *testing.T) {
	shared := needAgent(t)
	ca := tlstest.NewCA(t)
	svc, agentPair := ca.Issue("svc"), ca.Issue("consul-agent")
	conf, err := tlsconf.Server(svc.CertFile, svc.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	httpSrv := startTLSCheckedServer(t, CheckHTTP, conf)
	grpcSrv := startTLSCheckedServer(t, CheckGRPC, conf)

	plain := newRegistry(t, shared.Addr(), WithChecks(
		Check{Kind: CheckHTTP, Interval: time.Second, Timeout: time.Second, TLS: CheckTLS{SkipVerify: true}},
		Check{Kind: CheckTCP, Interval: time.Second, Timeout: time.Second},
	))
	inst := httpSrv.instance("mtls-plain", "mtls-plain")
	if err := plain.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	waitCheck(t, plain, inst.Name, checkID(inst.ID, CheckTCP), api.HealthPassing)
	waitCheckOutput(t, plain, checkID(inst.ID, CheckHTTP), api.HealthCritical)
	plainGRPC := newRegistry(t, shared.Addr(), WithChecks(
		Check{Kind: CheckGRPC, Interval: time.Second, Timeout: time.Second, TLS: CheckTLS{SkipVerify: true}},
	))
	ginst := grpcSrv.instance("mtls-plain-grpc", "mtls-plain-grpc")
	if err := plainGRPC.Register(ctxT(t, 5*time.Second), ginst); err != nil {
		t.Fatal(err)
	}
	waitCheckOutput(t, plainGRPC, checkID(ginst.ID, CheckGRPC), api.HealthCritical)

	withTLS := ownAgent(t, consultest.WithExtraConfig(fmt.Sprintf(`
enable_agent_tls_for_checks = true
tls {
  defaults {
    ca_file   = %q
    cert_file = %q
    key_file  = %q
  }
}`, ca.CertFile, agentPair.CertFile, agentPair.KeyFile)))
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := withTLS.Start(sctx); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, withTLS.Addr(), WithChecks(Check{Kind: CheckHTTP, Interval: time.Second, Timeout: time.Second}))
	inst = httpSrv.instance("mtls-agent-tls", "mtls-agent-tls")
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 10*time.Second, "passing through the agent's client certificate", registrytest.Has(inst.ID))
	rg := newRegistry(t, withTLS.Addr(), WithChecks(Check{Kind: CheckGRPC, Interval: time.Second, Timeout: time.Second}))
	ginst = grpcSrv.instance("mtls-agent-tls-grpc", "mtls-agent-tls-grpc")
	if err := rg.Register(ctxT(t, 5*time.Second), ginst); err != nil {
		t.Fatal(err)
	}
	waitCheckOutput(t, rg, checkID(ginst.ID, CheckGRPC), api.HealthPassing)

	// TLS.ServerName is the name verified: the certificate names localhost
	// and 127.0.0.1, not another host.
	for name, want := range map[string]string{"localhost": api.HealthPassing, "elsewhere.example": api.HealthCritical} {
		r := newRegistry(t, withTLS.Addr(), WithChecks(Check{Kind: CheckHTTP, Interval: time.Second, Timeout: time.Second, TLS: CheckTLS{ServerName: name}}))
		inst := httpSrv.instance("mtls-name-"+name, "mtls-name")
		if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
			t.Fatal(err)
		}
		waitCheckOutput(t, r, checkID(inst.ID, CheckHTTP), want)
	}
}

// waitCheckOutput is waitCheck for a status that must come from a probe,
// not the initial state: it wants an output too, and reads the agent's own
// view (the catalog gets output-only changes minutes later).
func waitCheckOutput(t *testing.T, r *Registry, id, status string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		checks, err := r.Client().Agent().Checks()
		if c, ok := checks[id]; err == nil && ok {
			if c.Status == status && c.Output != "" {
				t.Logf("%s: %s: %s", id, c.Status, c.Output)
				return
			}
			last = c.Status + ": " + c.Output
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("check %s has no probe result %s after 10s (last: %s)", id, status, last)
}
