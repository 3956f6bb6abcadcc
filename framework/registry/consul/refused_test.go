package consul

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// TestRegistry_PlainHTTPToTheHTTPSPortFailsAtOnce points a registry that
// speaks plain HTTP at a real agent's HTTPS port. The agent answers 400
// "Client sent an HTTP request to an HTTPS server": Register must fail on
// that answer and say it, not retry it forever as "invalid character 'C'
// looking for beginning of value" (consul/api's decoding of that text as
// JSON, which hid the status). The same port over HTTPS registers.
func TestRegistry_PlainHTTPToTheHTTPSPortFailsAtOnce(t *testing.T) {
	needAgent(t)
	ca := tlstest.NewCA(t)
	pair := ca.Issue("consul-agent")
	a := ownAgent(t, consultest.WithHTTPS(pair.CertFile, pair.KeyFile))
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	inst := registry.Instance{ID: "proto-1", Name: "proto", Endpoints: []string{"http://127.0.0.1:4321"}}

	plain := newRegistry(t, a.HTTPSAddr())
	// The deadline only bounds a failing test: the refusal must end
	// Register on the agent's first answer, whatever the load.
	ctx := ctxT(t, time.Minute)
	err := plain.Register(ctx, inst)
	switch {
	case err == nil:
		t.Fatal("registered over plain HTTP to the HTTPS port")
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("Register retried the refusal until its deadline: %v", err)
	case !strings.Contains(err.Error(), "400 (Client sent an HTTP request to an HTTPS server"):
		t.Fatalf("Register = %v, want the agent's 400 and its text", err)
	}
	t.Logf("refused: %v", err)

	tlsReg := newRegistry(t, "https://"+a.HTTPSAddr(), WithTLS(TLSConfig{CAFile: ca.CertFile}))
	if err := tlsReg.Register(ctxT(t, time.Minute), inst); err != nil {
		t.Fatalf("register over HTTPS: %v", err)
	}
}
