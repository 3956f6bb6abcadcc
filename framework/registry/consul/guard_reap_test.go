package consul

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// registerBodies records every service definition the Registry sends the
// agent (the real agent still gets each request as it was).
type registerBodies struct {
	mu   sync.Mutex
	defs []api.AgentServiceRegistration
	next http.RoundTripper
}

func (b *registerBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/v1/agent/service/register") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var def api.AgentServiceRegistration
		if json.Unmarshal(body, &def) == nil {
			b.mu.Lock()
			b.defs = append(b.defs, def)
			b.mu.Unlock()
		}
	}
	return b.next.RoundTrip(req)
}

// Every check carries DeregisterCriticalServiceAfter, 1m by default
// (docs/registry-consul.md, WithDeregisterCriticalAfter): it is what makes
// Consul reap an instance whose process died without deregistering. The
// agent does not show it back (its check API leaves it out), so this reads
// the definitions the Registry sends a real agent, every check of each,
// for the default, a value given, and 0 (unset: never reaped).
func TestGuard_EveryCheckCarriesDeregisterCriticalAfter(t *testing.T) {
	a := needAgent(t)
	srv := startCheckedServer(t, CheckTCP)
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"default", nil, "1m0s"},
		{"90s", []Option{WithDeregisterCriticalAfter(90 * time.Second)}, "1m30s"},
		{"zero", []Option{WithDeregisterCriticalAfter(0)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &registerBodies{}
			opts := append([]Option{
				WithChecks(Check{Kind: CheckTTL, TTL: 10 * time.Second}, Check{Kind: CheckTCP, Interval: 5 * time.Second, Timeout: time.Second}),
				WithTransport(func(next http.RoundTripper) http.RoundTripper { rec.next = next; return rec }),
			}, tc.opts...)
			r := newRegistry(t, a.Addr(), opts...)
			inst := srv.instance("guard-reap-"+tc.name, "guard-reap")
			if err := r.Register(ctxT(t, 20*time.Second), inst); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.defs) == 0 {
				t.Fatal("no service definition went to the agent")
			}
			for _, def := range rec.defs {
				if len(def.Checks) != 2 {
					t.Fatalf("definition of %s has %d checks, want 2", def.ID, len(def.Checks))
				}
				for _, c := range def.Checks {
					if c.DeregisterCriticalServiceAfter != tc.want {
						t.Errorf("check %s: DeregisterCriticalServiceAfter %q, want %q", c.CheckID, c.DeregisterCriticalServiceAfter, tc.want)
					}
				}
			}
		})
	}
}
