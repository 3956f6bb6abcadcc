package registry_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// stub is an sd.Instancer the test drives.
type stub struct {
	*registry.Cache
	stopped bool
}

func (s *stub) Stop() { s.stopped = true }

func waitState(t *testing.T, f *registry.Failover, want []string, active int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.State()
		if slices.Equal(got.Instances, want) && f.Active() == active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %v (active %d), want %v (active %d)", got.Instances, f.Active(), want, active)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The local source wins while it has an instance; without one the next
// source's set is published; and back when local has one again.
func TestFailover_LocalFirstThenNextAndBack(t *testing.T) {
	local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
	local.Update(sd.Event{Instances: []string{"l1"}})
	remote.Update(sd.Event{Instances: []string{"r1"}})
	f := registry.NewFailover(local, remote)
	waitState(t, f, []string{"l1"}, 0)

	local.Update(sd.Event{})
	waitState(t, f, []string{"r1"}, 1)

	local.Update(sd.Event{Instances: []string{"l2"}})
	waitState(t, f, []string{"l2"}, 0)

	f.Stop()
	f.Stop()
	if !local.stopped || !remote.stopped {
		t.Fatal("Stop did not stop the sources")
	}
}

// A local registry that cannot be read keeps its last good set (with the
// error): an outage of the registry is no reason to leave the region.
func TestFailover_LocalErrorWithLastGoodSetStaysLocal(t *testing.T) {
	local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
	local.Update(sd.Event{Instances: []string{"l1"}})
	remote.Update(sd.Event{Instances: []string{"r1"}})
	f := registry.NewFailover(local, remote)
	defer f.Stop()
	local.Update(sd.Event{Instances: []string{"l1"}, Err: errTest})
	waitErr(t, f)
	waitState(t, f, []string{"l1"}, 0)
	// Nothing anywhere: empty, with the errors.
	local.Update(sd.Event{Err: errTest})
	remote.Update(sd.Event{})
	waitState(t, f, nil, -1)
	waitErr(t, f)
}

func waitErr(t *testing.T, f *registry.Failover) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.State().Err == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sources' error was not passed on")
		}
	}
}

type testErr struct{}

func (testErr) Error() string { return "registry unreachable" }

var errTest = testErr{}

// An empty local set is not published while the next source has not
// reported: the first event a subscriber sees is the remote set, never an
// empty one (report j48d: `warren ls` printed "(no instances)" while
// callers were served from the other region).
func TestFailover_WaitsForThePreferredSourcesBeforePublishingEmpty(t *testing.T) {
	local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
	f := registry.NewFailover(local, remote)
	defer f.Stop()
	ch := make(chan sd.Event, 4)
	f.Register(ch)
	defer f.Deregister(ch)
	local.Update(sd.Event{}) // the local region: nothing
	remote.Update(sd.Event{Instances: []string{"r1"}})
	select {
	case ev := <-ch:
		if !slices.Equal(ev.Instances, []string{"r1"}) {
			t.Fatalf("first event %v, want the remote set [r1] (an empty set was published before the remote source reported)", ev.Instances)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published")
	}
}

// OnSwitch hears the first publication, the failover and the return, in
// order; a hook added later hears the current source at once.
func TestFailover_OnSwitchHearsEachChangeOfSource(t *testing.T) {
	local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
	f := registry.NewFailover(local, remote)
	defer f.Stop()
	switches := make(chan [2]int, 8)
	f.OnSwitch(func(from, to int) { switches <- [2]int{from, to} })
	// Each switch is waited for: changes that come faster than the two
	// readers may coalesce (local's return can be read before the remote
	// set is, and then nothing switched).
	local.Update(sd.Event{Instances: []string{"l1"}})
	remote.Update(sd.Event{Instances: []string{"r1"}})
	waitState(t, f, []string{"l1"}, 0)
	local.Update(sd.Event{})
	waitState(t, f, []string{"r1"}, 1)
	local.Update(sd.Event{Instances: []string{"l2"}})
	waitState(t, f, []string{"l2"}, 0)
	want := [][2]int{{-1, 0}, {0, 1}, {1, 0}}
	for i, w := range want {
		select {
		case got := <-switches:
			if got != w {
				t.Fatalf("switch %d = %v, want %v", i, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("switch %d (%v) not heard", i, w)
		}
	}
	late := make(chan [2]int, 1)
	f.OnSwitch(func(from, to int) { late <- [2]int{from, to} })
	if got := <-late; got != [2]int{-1, 0} {
		t.Fatalf("a hook added later heard %v, want [-1 0]", got)
	}
}

// foObserver records FailoverSource calls.
type foObserver struct {
	registry.NopObserver
	mu     sync.Mutex
	active map[string]bool
}

func (o *foObserver) FailoverSource(service, source string, active bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.active[service+"/"+source] = active
}

func (o *foObserver) is(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.active[key]
}

// reportFailover has ReportFailover follow f for service "user" in
// datacenters dca and dcb, logging to logs and reporting to obs; waitFor
// waits (10 s at most) until ok, failing with the log.
func reportFailover(t *testing.T, f *registry.Failover) (logs *syncbuf.Buffer, obs *foObserver, waitFor func(what string, ok func() bool)) {
	logs = &syncbuf.Buffer{}
	obs = &foObserver{active: map[string]bool{}}
	registry.ReportFailover(f, "user", "datacenter", []string{"dca", "dcb"}, log.NewLogfmtLogger(logs), obs)
	waitFor = func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s; log:\n%s", what, logs)
			}
		}
	}
	return logs, obs, waitFor
}

// The failover and the return are logged with the source's name and
// reported to a FailoverObserver; a start on the local source is quiet
// (report j48d: nothing told an on-call which region served).
func TestReportFailover_LogsAndReportsTheServingSource(t *testing.T) {
	local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
	local.Update(sd.Event{Instances: []string{"l1"}})
	remote.Update(sd.Event{Instances: []string{"r1"}})
	f := registry.NewFailover(local, remote)
	defer f.Stop()
	logs, obs, waitFor := reportFailover(t, f)
	waitFor("dca reported serving", func() bool { return obs.is("user/dca") && !obs.is("user/dcb") })
	if logs.String() != "" {
		t.Fatalf("a start on the local datacenter logged: %s", logs)
	}
	local.Update(sd.Event{})
	waitFor("the failover logged and reported", func() bool {
		return strings.Contains(logs.String(), `msg="discovery fails over: no instance in the preferred datacenters; callers use dcb" service=user datacenter=dcb preferred=dca`) &&
			obs.is("user/dcb") && !obs.is("user/dca")
	})
	local.Update(sd.Event{Instances: []string{"l2"}})
	waitFor("the return logged and reported", func() bool {
		return strings.Contains(logs.String(), `msg="discovery back to the local datacenter" service=user datacenter=dca from=dcb`) &&
			obs.is("user/dca") && !obs.is("user/dcb")
	})
}

// Sources that have a set when NewFailover is called give it the set
// before it returns: a subscriber registered right after gets the first
// pick at once, as from any other instancer (the conformance suite's
// first-event case), with no wait for a follower goroutine to run.
func TestFailover_HasTheFirstPickWhenItReturns(t *testing.T) {
	for i := range 200 {
		local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
		local.Update(sd.Event{})
		remote.Update(sd.Event{Instances: []string{"r1", "r2"}})
		f := registry.NewFailover(local, remote)
		ch := make(chan sd.Event, 1)
		f.Register(ch)
		select {
		case ev := <-ch:
			if !slices.Equal(ev.Instances, []string{"r1", "r2"}) || f.Active() != 1 {
				t.Fatalf("construction %d: first event %v (active %d), want [r1 r2] from source 1", i, ev.Instances, f.Active())
			}
		default:
			t.Fatalf("construction %d: no event at once after NewFailover returned", i)
		}
		f.Deregister(ch)
		f.Stop()
	}
}
