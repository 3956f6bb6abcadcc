package endpointer

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/registry"
)

// eventLog is a factory that records builds and closes in order.
type eventLog struct {
	mu sync.Mutex
	ev []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	l.ev = append(l.ev, s)
	l.mu.Unlock()
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ev)
}

func (l *eventLog) factory(instance string) (endpoint.Endpoint, io.Closer, error) {
	in, err := registry.ParseInstance(instance)
	if err != nil {
		return nil, nil, err
	}
	v := in.Version
	l.add("build " + v)
	return func(context.Context, any) (any, error) { return v, nil },
		closer(func() error { l.add("close " + v); return nil }), nil
}

// A record changed in place through a delta instancer (its old string
// removed, its new one added in one change) gets its new target before
// the old one closes, as the full-set path does: with nothing in flight
// on the old one, closing it first left the instance ID with no target
// for a moment, which the client reports as the instance released (its
// metric series deleted, its breaker and ejection dropped) and acquired
// again.
func TestEndpointer_RecordChangedInPlaceIsBuiltBeforeTheOldOneCloses(t *testing.T) {
	v1 := registry.Instance{ID: "i-1", Name: "svc", Version: "1", Endpoints: []string{"http://10.0.0.1:80"}}
	v2 := v1
	v2.Version = "2"
	c := registry.NewCache()
	c.Apply([]string{v1.String()}, nil, nil)
	l := &eventLog{}
	e := New(deltaOnly{c}, l.factory)
	defer e.Close()
	waitFor(t, "the first record", func() bool { return len(e.Targets()) == 1 })
	c.Apply([]string{v2.String()}, []string{v1.String()}, nil)
	waitFor(t, "the old record closed", func() bool { return slices.Contains(l.list(), "close 1") })
	if got, want := l.list(), []string{"build 1", "build 2", "close 1"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if ts := e.Targets(); len(ts) != 1 || ts[0].ID != v2.String() {
		t.Fatalf("targets after the change: %v", ts)
	}
}

// A string removed and added again in one change is kept, not retired
// (the new order must not turn a rejoin into a loss).
func TestEndpointer_StringRemovedAndAddedInOneChangeIsKept(t *testing.T) {
	for _, n := range []int{1, smallChange + 5} {
		var all []string
		for i := range n {
			all = append(all, registry.Instance{ID: "i-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Name: "svc", Version: "1",
				Endpoints: []string{"http://10.0.0.1:80"}}.String())
		}
		c := registry.NewCache()
		c.Apply(all, nil, nil)
		l := &eventLog{}
		e := New(deltaOnly{c}, l.factory)
		waitFor(t, "the first set", func() bool { return len(e.Targets()) == n })
		before := e.Targets()
		// Cache.Apply removes, then adds: each string is in both halves.
		c.Apply(all, all, nil)
		// Changes are applied in order: once this one shows, so has the one before.
		extra := registry.Instance{ID: "i-extra", Name: "svc", Version: "1", Endpoints: []string{"http://10.0.0.2:80"}}.String()
		c.Apply([]string{extra}, nil, nil)
		waitFor(t, "both changes applied", func() bool { return len(e.Targets()) == n+1 })
		var after []*balancer.Target
		for _, tg := range e.Targets() {
			if tg.ID != extra {
				after = append(after, tg)
			}
		}
		for i := range before {
			if before[i] != after[i] || after[i].Closed() {
				t.Fatalf("n=%d: %s rebuilt or closed by a change that kept it (events %q)", n, after[i].ID, l.list())
			}
		}
		e.Close()
	}
}
