package consul

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// TestRegistry_ACLTokenRequired runs an agent with ACLs on and a deny-all
// default policy, and checks that a registry with the management token
// registers and discovers, that one without a token (or with a made-up
// one) is refused at once with Consul's status and text — not retried
// until the caller gives up: the made-up token's refusal, "403 ACL not
// found", came from the conflict look-up as "invalid character 'A'
// looking for beginning of value" and was retried forever — and that the
// token shows up in neither the Status /readyz reports nor the log.
func TestRegistry_ACLTokenRequired(t *testing.T) {
	needAgent(t)
	token := uuid(t)
	a := aclAgent(t, token)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}

	inst := registry.Instance{ID: "acl-1", Name: "acl", Endpoints: []string{"http://127.0.0.1:4321"}}
	for _, tc := range []struct {
		name string
		opts []Option
		want string // Consul's answer, in the error
	}{
		{"no token", nil, "403 (Permission denied"},
		{"unknown token", []Option{WithToken(uuid(t))}, "403 (ACL not found)"},
	} {
		r := newRegistry(t, a.Addr(), tc.opts...)
		// The deadline only bounds a failing test: a refusal must end
		// Register on the agent's first answer, whatever the load.
		ctx := ctxT(t, time.Minute)
		err := r.Register(ctx, inst)
		switch {
		case err == nil:
			t.Errorf("%s: registered, want refused", tc.name)
		case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
			t.Errorf("%s: Register retried the refusal until its deadline: %v", tc.name, err)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: Register = %v, want an error with %q", tc.name, err, tc.want)
		default:
			t.Logf("%s: refused: %v", tc.name, err)
		}
	}

	logs := &syncbuf.Buffer{}
	r := newRegistry(t, a.Addr(), WithToken(token), WithLogger(log.NewLogfmtLogger(log.NewSyncWriter(logs))))
	if err := r.Register(ctxT(t, 10*time.Second), inst); err != nil {
		t.Fatalf("register with the management token: %v", err)
	}
	rec := registrytest.Record(t, newInstancer(t, r, "acl"))
	rec.WaitFor(t, 10*time.Second, "the instance in discovery", registrytest.Has("acl-1"))

	// A reader without a token sees nothing: discovery is protected too.
	anon := newRegistry(t, a.Addr())
	arec := registrytest.Record(t, newInstancer(t, anon, "acl"))
	ev, _ := arec.WaitFor(t, 10*time.Second, "an answer to the anonymous query", func(sd.Event) bool { return true })
	if _, ok := registrytest.ByID(ev, "acl-1"); ok {
		t.Error("an anonymous instancer sees the instance")
	}

	st := r.Status()
	if strings.Contains(fmt.Sprintf("%+v", st), token) || strings.Contains(logs.String(), token) {
		t.Error("the token appears in Status or the log")
	}
}

func uuid(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// docsPolicy is the token policy docs/production.md and security.md give a
// service ("acl-svc" here), exactly.
const docsPolicy = `
service "acl-svc" { policy = "write" }
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
`

// aclAgent is a -dev agent with ACLs on (deny by default) and mgmt as its
// management token (and its agent token). Its Start returns once the ACL
// system takes mgmt.
func aclAgent(t *testing.T, mgmt string) *consultest.Agent {
	t.Helper()
	return ownAgent(t, consultest.WithExtraConfig(fmt.Sprintf(`
acl {
  enabled = true
  default_policy = "deny"
  down_policy = "deny"
  tokens {
    initial_management = %q
    agent = %q
  }
}
`, mgmt, mgmt)), consultest.WithManagementToken(mgmt))
}

// grant makes token a token of docsPolicy on the agent at addr.
func grant(t *testing.T, addr, mgmt, token string) {
	t.Helper()
	grantRules(t, addr, mgmt, token, docsPolicy)
}

// grantRules makes token a token of a policy of rules on the agent at addr.
func grantRules(t *testing.T, addr, mgmt, token, rules string) {
	t.Helper()
	cl, err := api.NewClient(&api.Config{Address: addr, Token: mgmt})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := cl.ACL().PolicyCreate(&api.ACLPolicy{Name: "acl-svc-" + token[:8], Rules: rules}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.ACL().TokenCreate(&api.ACLToken{SecretID: token, Policies: []*api.ACLTokenPolicyLink{{ID: p.ID}}}, nil); err != nil {
		t.Fatal(err)
	}
}

// With exactly the token policy the docs give a service, everything the
// registry does works: register, fail over to the other agent, come home
// when home answers again, withdraw at once. Coming home asked the home
// agent its node name (GET /v1/agent/self), which needs agent:read: the
// registration stayed away, written again at home on every heartbeat, and
// Deregister spent its whole timeout on the same 403 (report j46b).
func TestRegistry_DocumentedTokenPolicyDoesEverything(t *testing.T) {
	mgmt, token := uuid(t), uuid(t)
	home, other := aclAgent(t, mgmt), aclAgent(t, mgmt)
	for _, a := range []*consultest.Agent{home, other} {
		if err := a.Start(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		grant(t, a.Addr(), mgmt, token)
	}
	const deregTimeout = 20 * time.Second
	r := newRegistry(t, home.Addr(), WithAddresses(home.Addr(), other.Addr()), WithTTLCheck(3*time.Second),
		WithToken(token), WithDeregisterTimeout(deregTimeout))
	inst := registry.Instance{ID: "acl-svc-1", Name: "acl-svc", Endpoints: []string{"http://127.0.0.1:18096"}}
	if err := r.Register(ctxT(t, 20*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "registered at home", func() bool { return holdsAs(t, home.Addr(), mgmt, inst.ID) })

	home.Kill()
	eventually(t, 30*time.Second, "moved to the other agent", func() bool { return holdsAs(t, other.Addr(), mgmt, inst.ID) })
	if err := home.Start(ctxT(t, time.Minute)); err != nil { // a fresh -dev agent: no ACL state either
		t.Fatal(err)
	}
	grant(t, home.Addr(), mgmt, token)
	eventually(t, 60*time.Second, "back home and gone from the other agent", func() bool {
		return holdsAs(t, home.Addr(), mgmt, inst.ID) && !holdsAs(t, other.Addr(), mgmt, inst.ID)
	})

	start := time.Now()
	if err := r.Deregister(ctxT(t, time.Minute), inst); err != nil {
		t.Fatal(err)
	}
	// Generous for a loaded machine, far short of the timeout a refused
	// call would be retried for.
	if took := time.Since(start); took > deregTimeout/2 {
		t.Fatalf("Deregister took %s of its %s timeout", took, deregTimeout)
	}
	if holdsAs(t, home.Addr(), mgmt, inst.ID) || holdsAs(t, other.Addr(), mgmt, inst.ID) {
		t.Fatal("an agent still holds the instance after Deregister")
	}
}

// A token that may write the service but not read the nodes gets answers
// from which Consul dropped every entry, with only a header to say so: the
// registry could neither confirm its registration nor find it to confirm
// its withdrawal, and an instancer discovered nothing, all silently (the
// confirm loop said so only after maxUnlisted beats, blaming nothing in
// particular). Both now say at once what the token lacks.
func TestRegistry_SaysWhenConsulHidesEntriesFromTheToken(t *testing.T) {
	mgmt, token := uuid(t), uuid(t)
	a := aclAgent(t, mgmt)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	grantRules(t, a.Addr(), mgmt, token, `service "acl-svc" { policy = "write" }`)
	logs := &syncbuf.Buffer{}
	r := newRegistry(t, a.Addr(), WithToken(token), WithTTLCheck(3*time.Second),
		WithLogger(log.NewLogfmtLogger(log.NewSyncWriter(logs))))
	inst := registry.Instance{ID: "acl-svc-1", Name: "acl-svc", Endpoints: []string{"http://127.0.0.1:18097"}}
	if err := r.Register(ctxT(t, 20*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the registrar saying the token cannot confirm", func() bool {
		return strings.Contains(logs.String(), "cannot confirm the servers list the registration: Consul hides entries from this token")
	})
	if strings.Contains(logs.String(), "no longer asking") {
		t.Errorf("the registrar asked until maxUnlisted instead of reading Consul's header:\n%s", logs)
	}
	newInstancer(t, r, "acl-svc")
	eventually(t, 30*time.Second, "the instancer saying Consul hides instances", func() bool {
		return strings.Contains(logs.String(), "Consul hides some instances from this token")
	})
	if !holdsAs(t, a.Addr(), mgmt, inst.ID) {
		t.Error("the agent does not hold the registration")
	}
}
