package consul

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
)

// roundTripFunc is an http.RoundTripper of a func.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// A process restarted on the same agent, ID and address (fresh) registers
// while the old one still runs. The old one's Close withdraws the ID from
// the agent, which drops fresh's copy too; fresh's keep loop registers it
// again at its next beat, and the agent syncs that copy to the catalog.
// The test holds the old Close right after its agent deregistration until
// the catalog lists fresh's new copy on the node, the interleaving a busy
// machine makes by chance: confirmWithdrawn must not take that copy for
// the old one the agent failed to sync and delete it from the catalog
// (the agent would believe it in sync, and the live instance would stay
// out of discovery until its next full sync, a minute or more).
// (report j48c 7a)
func TestRegistry_OldCloseLeavesTheNewProcessListed(t *testing.T) {
	a := needAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inst := registry.Instance{ID: "takeover-1", Name: "takeover", Endpoints: []string{"http://127.0.0.1:4567"}, Version: "1.0.0"}
	cl, err := api.NewClient(&api.Config{Address: a.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	// agentMark is the mark in the notes of the agent's check of inst
	// ("" while the agent does not hold it).
	agentMark := func() string {
		checks, err := cl.Agent().Checks()
		if err != nil {
			return ""
		}
		if c, ok := checks["service:"+inst.ID]; ok {
			if i := strings.Index(c.Notes, "warren registration "); i >= 0 {
				return c.Notes[i:]
			}
		}
		return ""
	}
	catalogMarks := func(node string) []string {
		entries, _, err := cl.Health().Service(inst.Name, "", false, nil)
		if err != nil {
			return nil
		}
		var marks []string
		for _, e := range entries {
			if e.Service == nil || e.Service.ID != inst.ID || e.Node == nil || e.Node.Node != node {
				continue
			}
			for _, c := range e.Checks {
				if i := strings.Index(c.Notes, "warren registration "); c.ServiceID == inst.ID && i >= 0 {
					marks = append(marks, c.Notes[i:])
				}
			}
		}
		return marks
	}

	var (
		hookOnce  sync.Once
		hookErr   string
		oldReg    *registration
		freshMark string
	)
	holdAfterDeregister := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if req.Method != http.MethodPut || !strings.HasSuffix(req.URL.Path, "/agent/service/deregister/"+inst.ID) {
				return resp, err
			}
			hookOnce.Do(func() {
				// Close stopped the keep loop before it deregistered:
				// oldReg is Close's to read now.
				if oldReg.node == "" {
					hookErr = "the old registration was never seen listed: confirmWithdrawn would not look"
					return
				}
				for end := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(end) {
						hookErr = "fresh's keep loop did not register again within 15s, or the catalog did not list it"
						return
					}
					m := agentMark()
					if m == "" || m == oldReg.mark {
						continue
					}
					if ms := catalogMarks(oldReg.node); len(ms) == 1 && ms[0] == m {
						freshMark = m
						return
					}
				}
			})
			return resp, err
		})
	}

	old, err := New(ctx, WithAddress(a.Addr()), WithTTLCheck(3*time.Second), WithTransport(holdAfterDeregister))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	fresh := newRegistry(t, a.Addr(), WithTTLCheck(3*time.Second), WithRetryBackoff(50*time.Millisecond, time.Second))

	if err := old.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	// Stop the old keep loop and have the servers' listing of its copy
	// confirmed here, so that Close knows the node the copy is on.
	old.mu.Lock()
	oldReg, _, _ = old.regs.Get(inst.ID)
	old.mu.Unlock()
	oldReg.stop()
	for !old.confirmListed(ctx, oldReg) || oldReg.node == "" {
		if ctx.Err() != nil {
			t.Fatal("the servers never listed the old registration")
		}
		time.Sleep(50 * time.Millisecond)
	}

	next := inst
	next.Version = "2.0.0"
	if err := fresh.Register(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if hookErr != "" {
		t.Fatal(hookErr)
	}
	if freshMark == "" {
		t.Fatal("the old Close never deregistered the ID at the agent")
	}
	// Discovery lists the new process after the old one closed, and keeps
	// listing it.
	if ms := catalogMarks(oldReg.node); len(ms) != 1 || ms[0] != freshMark {
		t.Fatalf("after the old process's Close the catalog lists %q on node %s, want the new process's copy (%s)",
			ms, oldReg.node, freshMark)
	}
	if st := fresh.Status(); st.State != registry.StateRegistered {
		t.Errorf("new process's Status = %+v, want registered", st)
	}
}
