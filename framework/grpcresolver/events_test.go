package grpcresolver_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc/resolver"

	"github.com/warren-mesh/warren/framework/grpcresolver"
	"github.com/warren-mesh/warren/framework/registry"
)

// cacheDiscovery serves one registry.Cache, the set every backend
// publishes through, so a test can hand the resolver exactly the events a
// backend sends in an outage (the last good set with the error, or an
// error alone).
type cacheDiscovery struct{ c *registry.Cache }

type cacheInstancer struct{ *registry.Cache }

func (cacheInstancer) Stop() {}

func (d cacheDiscovery) Instancer(context.Context, string) (sd.Instancer, error) {
	return cacheInstancer{d.c}, nil
}

// An error event that carries the last good set (reads failing, the set
// stands) is not reported to the channel; an error with no set is, and
// the next set then reaches the channel even when it is the one it had,
// so the channel leaves the error. Instances published only on grpcs://
// are resolved by default (schemes grpc, grpcs).
func TestResolver_OutageEvents(t *testing.T) {
	eps := func(id, ep string) string {
		return registry.Instance{ID: id, Name: "out", Endpoints: []string{ep}}.String()
	}
	a := eps("a", "grpc://127.0.0.1:7101")
	s := eps("s", "grpcs://127.0.0.1:7102")
	c := registry.NewCache()
	b, _ := grpcresolver.NewBuilder(cacheDiscovery{c})
	rec := &recorder{}
	r, err := b.Build(target("out"), rec, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// waitStates waits for the n-th state and returns it with the errors
	// reported so far; events are handled in order, so a state also
	// proves every event before it was handled.
	waitStates := func(n int) (resolver.State, []error) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			rec.mu.Lock()
			states, errs := slices.Clone(rec.states), slices.Clone(rec.errs)
			rec.mu.Unlock()
			if len(states) >= n {
				return states[n-1], errs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d states within 20s, want %d", len(states), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	addrs := func(st resolver.State) []string {
		var out []string
		for _, ad := range st.Addresses {
			out = append(out, ad.Addr)
		}
		slices.Sort(out)
		return out
	}

	c.Update(sd.Event{Instances: []string{a, s}})
	if st, _ := waitStates(1); !slices.Equal(addrs(st), []string{"127.0.0.1:7101", "127.0.0.1:7102"}) {
		t.Fatalf("first state %v; want the grpc and the grpcs instance", addrs(st))
	}
	down := errors.New("registry unreachable")
	c.Update(sd.Event{Instances: []string{a, s}, Err: down}) // the last good set stands
	c.Update(sd.Event{Instances: []string{a}})               // a change: the barrier
	if st, errs := waitStates(2); !slices.Equal(addrs(st), []string{"127.0.0.1:7101"}) || len(errs) != 0 {
		t.Fatalf("after an error with the last set: state %v, errors %v; want no error reported", addrs(st), errs)
	}
	c.Update(sd.Event{Err: down}) // nothing known: an error alone
	c.Update(sd.Event{Instances: []string{a}})
	st, errs := waitStates(3)
	if !slices.Equal(addrs(st), []string{"127.0.0.1:7101"}) || len(errs) != 1 || !strings.Contains(errs[0].Error(), "registry unreachable") {
		t.Fatalf("after an error alone and the same set again: state %v, errors %v; want the set passed on again after one error", addrs(st), errs)
	}
}
