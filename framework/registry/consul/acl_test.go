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
	a := ownAgent(t, consultest.WithExtraConfig(fmt.Sprintf(`
acl {
  enabled = true
  default_policy = "deny"
  down_policy = "deny"
  tokens {
    initial_management = %q
    agent = %q
  }
}
`, token, token)))
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
