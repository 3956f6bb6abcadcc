package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

func inst(port int) registry.Instance {
	return registry.Instance{ID: registry.DefaultID("user", "127.0.0.1", port), Name: "user", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// subscriber collects events from an instancer.
type subscriber struct {
	ch   chan sd.Event
	mu   sync.Mutex
	last sd.Event
	n    int
	done chan struct{}
}

func subscribe(t *testing.T, src sd.Instancer) *subscriber {
	s := &subscriber{ch: make(chan sd.Event), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ev := range s.ch {
			s.mu.Lock()
			s.last, s.n = ev, s.n+1
			s.mu.Unlock()
		}
	}()
	src.Register(s.ch)
	t.Cleanup(func() { src.Deregister(s.ch); close(s.ch); <-s.done })
	return s
}

func (s *subscriber) instances() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last.Instances
}

func writeSnapshot(t *testing.T, path string, instances ...string) {
	t.Helper()
	if err := writeFile(path, file{V: fileVersion, Service: "user", Written: time.Now(), Instances: instances}); err != nil {
		t.Fatal(err)
	}
}

// silent is an instancer whose registry never answers.
type silent struct{}

func (silent) Register(chan<- sd.Event)   {}
func (silent) Deregister(chan<- sd.Event) {}
func (silent) Stop()                      {}

func TestInstancer_WritesEachGoodSetAtomicallyToTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "user.json")
	reg := memory.New()
	defer reg.Close()
	inner, _ := reg.Instancer(context.Background(), "user")
	s := must(New(inner, path))
	defer s.Stop()
	sub := subscribe(t, s)
	_ = reg.Register(context.Background(), inst(1))
	_ = reg.Register(context.Background(), inst(2))
	waitFor(t, "two instances", func() bool { return len(sub.instances()) == 2 })
	waitFor(t, "file with two instances", func() bool {
		f, err := readFile(path)
		return err == nil && len(f.Instances) == 2
	})
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries (temp files left?)", len(entries))
	}
	if st := s.State(); st.Stale || st.Source != SourceRegistry {
		t.Fatalf("state %+v", st)
	}
}

func TestInstancer_ServesSnapshotAtOnceAndMarksItStaleWhileRegistryIsSilent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	want := []string{inst(1).String(), inst(2).String()}
	writeSnapshot(t, path, want...)
	logs := &syncbuf.Buffer{}
	s := must(New(silent{}, path, WithLogger(log.NewLogfmtLogger(logs))))
	defer s.Stop()
	sub := subscribe(t, s)
	waitFor(t, "snapshot set", func() bool { return slices.Equal(sub.instances(), want) })
	st := s.State()
	if !st.Stale || st.Source != SourceSnapshot || st.Instances != 2 {
		t.Fatalf("state %+v, want stale snapshot", st)
	}
	// Said once the connect wait (250 ms) has passed without an answer.
	waitFor(t, "the stale warning", func() bool { return strings.Contains(logs.String(), "serving stale instance snapshot") })
}

func TestInstancer_RegistryAnswerReplacesTheSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	writeSnapshot(t, path, inst(1).String())
	reg := memory.New()
	defer reg.Close()
	_ = reg.Register(context.Background(), inst(7))
	inner, _ := reg.Instancer(context.Background(), "user")
	var mu sync.Mutex
	var seen []string // what the stale observer heard (a metric, report j47c)
	s := must(New(inner, path, WithStaleObserver(func(service string, stale bool) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s:%v", service, stale))
	})))
	defer s.Stop()
	sub := subscribe(t, s)
	waitFor(t, "live set", func() bool { return slices.Equal(sub.instances(), []string{inst(7).String()}) })
	waitFor(t, "file rewritten", func() bool {
		f, err := readFile(path)
		return err == nil && slices.Equal(f.Instances, []string{inst(7).String()})
	})
	if st := s.State(); st.Stale {
		t.Fatalf("still stale: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	// The registry answered within the connect wait: the snapshot was
	// never announced as served (it used to be at every start: j50d 5).
	if len(seen) != 0 {
		t.Fatalf("stale observer heard %q, want nothing", seen)
	}
}

// A registry that answers only after the connect wait: the snapshot is
// announced (log, observer) and then left when the registry answers.
func TestInstancer_AnnouncesTheSnapshotOnlyWhenTheRegistryIsLate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	writeSnapshot(t, path, inst(1).String())
	inner := stoppable{registry.NewCache()}
	var mu sync.Mutex
	var seen []string
	heard := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(seen) }
	logs := &syncbuf.Buffer{}
	s := must(New(inner, path, WithLogger(log.NewLogfmtLogger(logs)), WithStaleObserver(func(service string, stale bool) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s:%v", service, stale))
	})))
	defer s.Stop()
	waitFor(t, "the snapshot announced", func() bool { return slices.Equal(heard(), []string{"user:true"}) })
	inner.Update(sd.Event{Instances: []string{inst(7).String()}})
	waitFor(t, "the snapshot left", func() bool { return slices.Equal(heard(), []string{"user:true", "user:false"}) })
	if n := strings.Count(logs.String(), "serving stale instance snapshot"); n != 1 {
		t.Fatalf("%d stale warnings, want 1:\n%s", n, logs.String())
	}
}

func TestInstancer_IgnoresCorruptSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	if err := os.WriteFile(path, []byte(`{"v":1,"instances":["garbage"`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := must(New(silent{}, path))
	defer s.Stop()
	if st := s.State(); st.Source != SourceNone || st.LastError == "" {
		t.Fatalf("state %+v, want nothing served and the error kept", st)
	}
}

// flaky fails to create instancers until up is set.
type flaky struct {
	up    atomic.Bool
	tries atomic.Int32
	reg   *memory.Registry
}

func (f *flaky) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	f.tries.Add(1)
	if !f.up.Load() {
		return nil, errors.New("dial registry: connection refused")
	}
	return f.reg.Instancer(ctx, service)
}

func TestDiscovery_ServesSnapshotWhileRegistryIsDownThenSwitchesWhenItAnswers(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, filepath.Join(dir, "user.json"), inst(1).String())
	reg := memory.New()
	defer reg.Close()
	_ = reg.Register(context.Background(), inst(9))
	f := &flaky{reg: reg}
	src, err := Discovery(f, dir, WithReconnectBackoff(time.Millisecond, 5*time.Millisecond)).Instancer(context.Background(), "user")
	if err != nil {
		t.Fatalf("Instancer with registry down and a snapshot: %v", err)
	}
	defer src.Stop()
	sub := subscribe(t, src)
	waitFor(t, "snapshot set", func() bool { return slices.Equal(sub.instances(), []string{inst(1).String()}) })
	waitFor(t, "reconnect attempts", func() bool { return f.tries.Load() >= 3 })
	f.up.Store(true)
	waitFor(t, "live set", func() bool { return slices.Equal(sub.instances(), []string{inst(9).String()}) })
	if st := src.(*Instancer).State(); st.Stale || st.Source != SourceRegistry {
		t.Fatalf("state %+v", st)
	}
}

func TestDiscovery_ReturnsRegistryErrorWhenThereIsNoSnapshot(t *testing.T) {
	f := &flaky{}
	if _, err := Discovery(f, t.TempDir()).Instancer(context.Background(), "user"); err == nil {
		t.Fatal("want the registry's error")
	}
}

// slowDiscovery takes a while to create an instancer, as etcd's does
// while etcd is down (it waits WithInitialWait for a first listing), and
// then hands back one that never answers.
type slowDiscovery struct{ wait time.Duration }

func (d slowDiscovery) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	select {
	case <-time.After(d.wait):
	case <-ctx.Done():
	}
	return silent{}, nil
}

func TestDiscovery_ServesSnapshotAtOnceWhileTheRegistryIsSlowToAnswer(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, filepath.Join(dir, "user.json"), inst(1).String())
	start := time.Now()
	src, err := Discovery(slowDiscovery{wait: 3 * time.Second}, dir, WithConnectWait(50*time.Millisecond)).Instancer(context.Background(), "user")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	defer src.Stop()
	if took > time.Second {
		t.Fatalf("Instancer took %s with a snapshot on disk; want about ConnectWait", took)
	}
	sub := subscribe(t, src)
	waitFor(t, "snapshot set", func() bool { return slices.Equal(sub.instances(), []string{inst(1).String()}) })
}

func TestDiscovery_WithSnapshotStartsFromTheLiveSetWhenTheRegistryAnswers(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, filepath.Join(dir, "user.json"), inst(1).String())
	reg := memory.New()
	defer reg.Close()
	_ = reg.Register(context.Background(), inst(9))
	src, err := Discovery(reg, dir, WithConnectWait(5*time.Second)).Instancer(context.Background(), "user")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	if st := src.(*Instancer).State(); st.Stale || st.Source != SourceRegistry {
		t.Fatalf("state %+v when Instancer returned; want the registry's set", st)
	}
}

// A good answer with no instances is served (the registry says so) but
// never written: the file keeps the last non-empty set, which is what a
// client restarted during the outage that emptied the registry needs.
func TestInstancer_NeverWritesAnEmptySetToTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	s := must(New(silent{}, path))
	defer s.Stop()
	sub := subscribe(t, s)
	two := []string{inst(1).String(), inst(2).String()}
	s.handle(sd.Event{Instances: two})
	waitFor(t, "the file with the set of two", func() bool {
		f, err := readFile(path)
		return err == nil && slices.Equal(f.Instances, two)
	})
	s.handle(sd.Event{Instances: []string{}})
	waitFor(t, "the empty set served", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return sub.n > 0 && sub.last.Instances != nil && len(sub.last.Instances) == 0
	})
	if f, err := readFile(path); err != nil || !slices.Equal(f.Instances, two) {
		t.Fatalf("file after an empty set = %+v, %v; want the last non-empty set kept", f, err)
	}
}

// stoppable is a registry.Cache as an instancer the test feeds.
type stoppable struct{ *registry.Cache }

func (stoppable) Stop() {}

// While the snapshot is served, registry errors are one warning (the
// registry's instancer logs the outage itself); once the registry has
// answered, the snapshot is not served and its errors are the registry's
// and the endpointer's to report.
func TestInstancer_WarnsOncePerRunOfRegistryErrorsWhileStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	writeSnapshot(t, path, inst(1).String())
	inner := stoppable{registry.NewCache()}
	logs := &syncbuf.Buffer{}
	s := must(New(inner, path, WithLogger(log.NewLogfmtLogger(logs))))
	defer s.Stop()
	sub := subscribe(t, s)
	waitFor(t, "snapshot set", func() bool { return len(sub.instances()) == 1 })
	for i := range 4 {
		inner.Update(sd.Event{Err: errors.New("registry down " + strings.Repeat("!", i))})
	}
	waitFor(t, "the last error noted", func() bool { return s.State().LastError == "registry down !!!" })
	warns := func() int { return strings.Count(logs.String(), `msg="registry unreachable; serving stale snapshot"`) }
	if n := warns(); n != 1 {
		t.Fatalf("4 errors while stale logged %d warnings, want 1:\n%s", n, logs.String())
	}
	inner.Update(sd.Event{Instances: []string{inst(2).String()}})
	waitFor(t, "the live set", func() bool { return slices.Equal(sub.instances(), []string{inst(2).String()}) })
	inner.Update(sd.Event{Instances: []string{inst(2).String()}, Err: errors.New("down again")})
	waitFor(t, "the new error noted", func() bool { return s.State().LastError == "down again" })
	if strings.Count(logs.String(), "level=warn") != 2 { // the snapshot served at start, the errors while stale
		t.Fatalf("warnings after the registry answered and failed again:\n%s", logs.String())
	}
}

// The file is written off the event path: while a write hangs (a slow
// disk; at 10k instances a write is a megabyte and an fsync), the
// registry's changes still reach subscribers, and the sets that came
// meanwhile are one write of the latest, not one each (report j50d: a
// client fell minutes behind a churning 10k-instance service).
func TestInstancer_WritesOffTheEventPathAndCoalesces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	reg := memory.New()
	defer reg.Close()
	inner, _ := reg.Instancer(context.Background(), "user")
	release := make(chan struct{})
	var mu sync.Mutex
	var writes [][]string
	s := must(New(inner, path, func(s *Instancer) error {
		s.writeEvery = time.Millisecond
		s.writeFn = func(path string, f file) error {
			mu.Lock()
			first := len(writes) == 0
			writes = append(writes, f.Instances)
			mu.Unlock()
			if first {
				<-release // the first write hangs until the test lets it go
			}
			return writeFile(path, f)
		}
		return nil
	}))
	defer s.Stop()
	let := sync.OnceFunc(func() { close(release) })
	defer let() // before Stop: a failing run must not leave the write hanging
	sub := subscribe(t, s)
	written := func() [][]string { mu.Lock(); defer mu.Unlock(); return slices.Clone(writes) }
	_ = reg.Register(context.Background(), inst(1))
	waitFor(t, "the first write to start", func() bool { return len(written()) == 1 })
	// From another goroutine: the registry hands its changes over
	// synchronously, so with the write on the event path Register itself
	// would hang here.
	registered := make(chan struct{})
	go func() {
		defer close(registered)
		for n := 2; n <= 4; n++ {
			_ = reg.Register(context.Background(), inst(n))
		}
	}()
	waitFor(t, "4 instances at the subscriber while the write hangs", func() bool { return len(sub.instances()) == 4 })
	<-registered
	let()
	waitFor(t, "the latest set on disk", func() bool {
		f, err := readFile(path)
		return err == nil && len(f.Instances) == 4
	})
	if w := written(); len(w) != 2 || len(w[0]) != 1 || len(w[1]) != 4 {
		t.Fatalf("writes of %d sets %v; want 2: the first (1 instance) and the latest (4)", len(w), w)
	}
}

// deltaOnly is an inner DeltaInstancer that records a whole-set
// subscription: the snapshot layer must follow its deltas.
type deltaOnly struct {
	*registry.Cache
	wholeSets atomic.Bool
}

func (d *deltaOnly) Register(ch chan<- sd.Event) { d.wholeSets.Store(true); d.Cache.Register(ch) }
func (d *deltaOnly) Stop()                       {}

// Over an inner that hands changes (registry.DeltaInstancer), the snapshot
// layer follows the changes, not whole sets — a change costs its size,
// not the set's (re-test j52a: at 10k instances under churn, whole sets
// kept a client with a snapshot 42 s behind) — and its subscribers and
// file still get the exact set: first the registry's whole set in place
// of the snapshot's, then each change.
func TestInstancer_FollowsTheInnerDeltas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	writeSnapshot(t, path, inst(9).String())
	inner := &deltaOnly{Cache: registry.NewCache()}
	s := must(New(inner, path))
	defer s.Stop()
	sub := subscribe(t, s)
	waitFor(t, "the snapshot served", func() bool { return slices.Equal(sub.instances(), []string{inst(9).String()}) })
	inner.Update(sd.Event{Instances: []string{inst(1).String(), inst(2).String()}})
	want := []string{inst(1).String(), inst(2).String()}
	slices.Sort(want)
	waitFor(t, "the registry's set in place of the snapshot's", func() bool { return slices.Equal(sub.instances(), want) })
	inner.Apply([]string{inst(3).String()}, []string{inst(1).String()}, nil)
	want = []string{inst(2).String(), inst(3).String()}
	slices.Sort(want)
	waitFor(t, "the change applied", func() bool { return slices.Equal(sub.instances(), want) })
	waitFor(t, "the file at the latest set", func() bool {
		f, err := readFile(path)
		return err == nil && slices.Equal(f.Instances, want)
	})
	if st := s.State(); st.Stale || st.Source != SourceRegistry || st.Instances != 2 {
		t.Fatalf("state %+v, want the registry's 2 instances", st)
	}
	if inner.wholeSets.Load() {
		t.Fatal("the snapshot layer subscribed to whole sets of an inner that hands changes")
	}
}

// The defaults docs/client.md states: wait 250 ms for the registry,
// reconnect from 100 ms doubling to 10 s, write at most once a second.
func TestNew_DocumentedDefaults(t *testing.T) {
	s := must(newInstancer(filepath.Join(t.TempDir(), "user.json"), "user", nil))
	defer s.cancel()
	if s.connectWait != 250*time.Millisecond || s.minWait != 100*time.Millisecond || s.maxWait != 10*time.Second || s.writeEvery != time.Second {
		t.Fatalf("connect wait %s, reconnect %s–%s, write every %s; want 250ms, 100ms–10s, 1s", s.connectWait, s.minWait, s.maxWait, s.writeEvery)
	}
}

// Stop writes the set still pending: a change that came while the writer
// waited out its interval is on disk once Stop returns.
func TestInstancer_StopWritesThePendingSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	s := must(New(silent{}, path, func(s *Instancer) error { s.writeEvery = time.Hour; return nil }))
	stopped := false
	defer func() {
		if !stopped {
			s.Stop()
		}
	}()
	one, two := []string{inst(1).String()}, []string{inst(1).String(), inst(2).String()}
	s.handle(sd.Event{Instances: one})
	waitFor(t, "the first set on disk", func() bool {
		f, err := readFile(path)
		return err == nil && slices.Equal(f.Instances, one)
	})
	s.handle(sd.Event{Instances: two}) // the writer now waits an hour
	s.Stop()
	stopped = true
	if f, err := readFile(path); err != nil || !slices.Equal(f.Instances, two) {
		t.Fatalf("file after Stop = %+v, %v; want the pending set %v", f, err, two)
	}
}

// A set left pending while a write hung, then emptied before the writer
// got to it, is not written as an empty set.
func TestInstancer_PendingSetEmptiedMeanwhileIsNotWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	release := make(chan struct{})
	let := sync.OnceFunc(func() { close(release) })
	var mu sync.Mutex
	var writes [][]string
	s := must(New(silent{}, path, func(s *Instancer) error {
		s.writeEvery = time.Millisecond
		s.writeFn = func(path string, f file) error {
			mu.Lock()
			first := len(writes) == 0
			writes = append(writes, f.Instances)
			mu.Unlock()
			if first {
				<-release
			}
			return writeFile(path, f)
		}
		return nil
	}))
	defer s.Stop()
	defer let()
	one := []string{inst(1).String()}
	s.handle(sd.Event{Instances: one})
	waitFor(t, "the first write to start", func() bool { mu.Lock(); defer mu.Unlock(); return len(writes) == 1 })
	s.handle(sd.Event{Instances: []string{inst(1).String(), inst(2).String()}}) // pending
	s.handle(sd.Event{Instances: []string{}})                                   // then emptied
	let()
	s.Stop()
	mu.Lock()
	defer mu.Unlock()
	for _, w := range writes {
		if len(w) == 0 {
			t.Fatalf("writes %v include an empty set", writes)
		}
	}
	if f, err := readFile(path); err != nil || !slices.Equal(f.Instances, one) {
		t.Fatalf("file = %+v, %v; want the last non-empty set written", f, err)
	}
}

// A file of another schema version is ignored, not guessed at; a file's
// unusable entries are dropped and the rest served.
func TestInstancer_LoadsOnlyItsVersionAndUsableInstances(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other.json")
	if err := writeFile(other, file{V: fileVersion + 1, Service: "user", Instances: []string{inst(1).String()}}); err != nil {
		t.Fatal(err)
	}
	s := must(New(silent{}, other))
	st := s.State()
	s.Stop()
	if st.Source != SourceNone || !strings.Contains(st.LastError, "version") {
		t.Fatalf("state %+v, want nothing served and the version named", st)
	}
	mixed := filepath.Join(dir, "mixed.json")
	writeSnapshot(t, mixed, "garbage", inst(1).String())
	s = must(New(silent{}, mixed))
	defer s.Stop()
	if got := s.Cache.State().Instances; !slices.Equal(got, []string{inst(1).String()}) || s.State().Instances != 1 {
		t.Fatalf("served %v (state %+v), want only the usable instance", got, s.State())
	}
}

// While the snapshot is served, a registry error leaves it served: the
// callers keep the instances and see no error.
func TestInstancer_RegistryErrorsWhileStaleKeepTheSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	writeSnapshot(t, path, inst(1).String())
	inner := stoppable{registry.NewCache()}
	s := must(New(inner, path))
	defer s.Stop()
	inner.Update(sd.Event{Err: errors.New("e1")})
	waitFor(t, "the first error noted", func() bool { return s.State().LastError == "e1" })
	// Taken only once the first error's handling is over.
	inner.Update(sd.Event{Err: errors.New("e2")})
	if ev := s.Cache.State(); ev.Err != nil || !slices.Equal(ev.Instances, []string{inst(1).String()}) {
		t.Fatalf("served %v, err %v; want the snapshot's instance and no error", ev.Instances, ev.Err)
	}
}
