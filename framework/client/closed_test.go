package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
)

// A call on a closed Client fails at once with ErrClosed: no attempt, no
// backoff, no retry budget spent (round 1 retried the empty balancer).
func TestClient_CallAfterCloseReturnsErrClosedAtOnce(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	if err := c.Invoke(context.Background(), "GET", "/x", nil, nil); err != nil {
		t.Fatalf("call before Close: %v", err)
	}
	hits := b.hits.Load()
	before := c.State()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	err := c.Invoke(context.Background(), "GET", "/x", nil, nil)
	if !errors.Is(err, ErrClosed) || !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("call after Close = %v, want ErrClosed (registry.ErrClosed, the one closed error)", err)
	}
	after := c.State()
	if after.Retries != before.Retries || after.RetriesRefused != before.RetriesRefused {
		t.Fatalf("call after Close spent retry budget: %+v -> %+v", before, after)
	}
	if b.hits.Load() != hits {
		t.Fatal("call after Close reached the backend")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// releaseLog records the observer calls of one client.
type releaseLog struct {
	NopObserver
	mu     sync.Mutex
	events []string
}

func (l *releaseLog) Picked(_, instance string) { l.add("picked " + instance) }

func (l *releaseLog) InstanceReleased(_, instance string) { l.add("released " + instance) }

func (l *releaseLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, s)
}

func (l *releaseLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// An instance that leaves discovery is reported released once, after its
// last pick, with outlier ejection on or off, so per-instance metric
// series can be deleted.
func TestClient_ReportsAnInstanceReleasedOnceAfterItsLastPick(t *testing.T) {
	for _, opts := range [][]Option{nil, {WithoutOutlier()}} {
		b := startBackend(t, "", nil)
		reg := newRegistry(t, b.inst)
		obs := &releaseLog{}
		c := newClient(t, reg, append(opts, WithObserver(obs))...)
		for range 3 {
			if err := c.Invoke(context.Background(), "GET", "/x", nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := reg.Deregister(context.Background(), b.inst); err != nil {
			t.Fatal(err)
		}
		released := "released " + b.inst.ID
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Contains(obs.list(), released) {
			if time.Now().After(deadline) {
				t.Fatalf("no release within 10s: %v", obs.list())
			}
			time.Sleep(10 * time.Millisecond)
		}
		ev := obs.list()
		if slices.Index(ev, released) != len(ev)-1 || strings.Count(strings.Join(ev, "\n"), released) != 1 {
			t.Fatalf("events %v: want the release once, last", ev)
		}
	}
}

// acquireLog is a releaseLog that also implements InstanceObserver.
type acquireLog struct{ releaseLog }

func (l *acquireLog) InstanceAcquired(_, instance string) { l.add("acquired " + instance) }

func (l *acquireLog) BreakerReleased(_, instance string, last outlier.State) {
	l.add(fmt.Sprintf("breaker released %s %d", instance, last))
}

// An InstanceObserver hears an instance acquired once per client, before
// its first pick, and the instance's breaker released before the
// instance. An observer shared by several clients counts the clients
// holding an instance with it (package metrics, audit o6 R1); releaseLog,
// which does not implement it, still hears releases
// (TestClient_ReportsAnInstanceReleasedOnceAfterItsLastPick).
func TestClient_ReportsAnInstanceAcquiredOnceBeforeItsPicks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := startBackend(t, "", nil)
	reg := newRegistry(t, b.inst)
	obs := &acquireLog{}
	c := newClient(t, reg, WithObserver(obs))
	id := b.inst.ID
	for range 2 {
		if err := c.Invoke(ctx, "GET", "/x", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Deregister(ctx, b.inst); err != nil {
		t.Fatal(err)
	}
	released := "released " + id
	for deadline := time.Now().Add(10 * time.Second); !slices.Contains(obs.list(), released); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no release within 10s: %v", obs.list())
		}
	}
	want := []string{"acquired " + id, "picked " + id, "picked " + id, fmt.Sprintf("breaker released %s %d", id, outlier.Closed), released}
	if ev := obs.list(); !slices.Equal(ev, want) {
		t.Errorf("events %q, want %q", ev, want)
	}
}
