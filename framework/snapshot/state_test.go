package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// gauge is a stale observer kept as a metric keeps it: one value per
// service, the last one told.
type gauge struct {
	mu   sync.Mutex
	v    map[string]bool
	told chan bool // every call, for tests that wait on one (buffered)
}

func newGauge() *gauge { return &gauge{v: map[string]bool{}, told: make(chan bool, 16)} }

func (g *gauge) set(service string, stale bool) {
	g.mu.Lock()
	g.v[service] = stale
	g.mu.Unlock()
	select {
	case g.told <- stale:
	default:
	}
}

func (g *gauge) get(service string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.v[service]
}

// An Instancer stopped while it serves the snapshot tells the stale
// observer it no longer does. Before, the metric stayed at 1 after the
// client's Close, and the next client of the service, started with the
// registry up, never announced a snapshot and so never set it back: a
// process served live instances under warren_client_discovery_stale 1.
func TestInstancer_StopWhileStaleEndsTheStaleMetric(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	writeSnapshot(t, path, inst(1).String())
	g := newGauge()
	s := must(New(silent{}, path, WithConnectWait(time.Millisecond), WithStaleObserver(g.set)))
	waitFor(t, "the snapshot announced", func() bool { return g.get("user") })
	s.Stop()
	s.Stop() // idempotent, and says it once
	if g.get("user") {
		t.Fatal("stale observer still true after Stop")
	}

	// The next Instancer of the service, the registry up at once.
	reg := memory.New()
	defer reg.Close()
	_ = reg.Register(context.Background(), inst(2))
	inner, _ := reg.Instancer(context.Background(), "user")
	s2 := must(New(inner, path, WithStaleObserver(g.set)))
	defer s2.Stop()
	waitFor(t, "the live set", func() bool { return s2.State().Source == SourceRegistry })
	if g.get("user") {
		t.Fatal("stale observer true while the next Instancer serves the registry's set")
	}
}

// gatedLogger blocks the line whose msg is gate until release is closed,
// and says on entered that it got there: the log line of one phase held
// while another event happens.
type gatedLogger struct {
	gate     string
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
	fallback log.Logger
}

func (l *gatedLogger) Log(kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "msg" && kv[i+1] == l.gate {
			l.once.Do(func() { close(l.entered) })
			<-l.release
		}
	}
	return l.fallback.Log(kv...)
}

// The snapshot announced (connect wait over) just as the registry
// answers: the stale observer ends on false, the state it is in. Before,
// announceStale told the observer true after its log line, outside the
// lock, so a registry answer handled in between (which tells false) was
// overtaken, and the metric said stale for as long as the process ran.
func TestDiscovery_AnnouncementOvertakenByTheRegistryAnswerEndsNotStale(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, filepath.Join(dir, "user.json"), inst(1).String())
	inner := stoppable{registry.NewCache()}
	lg := &gatedLogger{gate: "serving stale instance snapshot until the registry answers",
		entered: make(chan struct{}), release: make(chan struct{}), fallback: log.NewNopLogger()}
	g := newGauge()
	d := Discovery(cacheDisc{inner}, dir, WithConnectWait(time.Millisecond), WithLogger(lg), WithStaleObserver(g.set))
	type result struct {
		src sd.Instancer
		err error
	}
	done := make(chan result, 1)
	go func() { // ends when the gate is released below
		src, err := d.Instancer(context.Background(), "user")
		done <- result{src, err}
	}()
	select {
	case <-lg.entered:
	case <-time.After(10 * time.Second):
		close(lg.release)
		t.Fatal("the snapshot was not announced within 10s")
	}
	inner.Update(sd.Event{Instances: []string{inst(2).String()}}) // the registry answers
	// With the fix the observer heard true (before the log line) and
	// then false; without it only false so far.
	deadline := time.After(10 * time.Second)
	for sawFalse := false; !sawFalse; {
		select {
		case v := <-g.told:
			sawFalse = !v
		case <-deadline:
			close(lg.release)
			t.Fatal("the registry's answer did not reach the stale observer within 10s")
		}
	}
	close(lg.release)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Instancer did not return within 10s of the release")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.src.Stop()
	if st := r.src.(*Instancer).State(); st.Stale {
		t.Fatalf("state %+v, want the registry's set", st)
	}
	if g.get("user") {
		t.Fatal("stale observer ends true while the registry's set is served")
	}
}

// cacheDisc hands out one registry.Cache as every service's instancer.
type cacheDisc struct{ c stoppable }

func (d cacheDisc) Instancer(context.Context, string) (sd.Instancer, error) { return d.c, nil }

// A file that is another service's snapshot (copied or moved into the
// directory, or a name two services share on a case-insensitive disk) is
// not served as this service's instances.
func TestDiscovery_IgnoresAnotherServicesSnapshot(t *testing.T) {
	dir := t.TempDir()
	order := registry.Instance{ID: "order-1", Name: "order", Endpoints: []string{"http://127.0.0.1:9101"}}.String()
	if err := writeFile(filepath.Join(dir, "user.json"), file{V: fileVersion, Service: "order", Written: time.Now(), Instances: []string{order}}); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	src, err := Discovery(&flaky{}, dir, WithLogger(log.NewLogfmtLogger(logs))).Instancer(context.Background(), "user")
	if err == nil {
		defer src.Stop()
		t.Fatalf("Instancer served %v (state %+v); want the registry's error, the file being order's", src.(*Instancer).Cache.State().Instances, src.(*Instancer).State())
	}

	if !strings.Contains(err.Error(), "refused") || !strings.Contains(logs.String(), `of service \"order\", not \"user\"`) {
		t.Fatalf("Instancer error %v, log:\n%s\nwant the registry's error and the file named as order's", err, logs.String())
	}
}

// Stop while the registry's instancer is still being made (the registry
// unreachable): the attempt that Stop cancels is not logged as the
// registry being unreachable, nor kept as its error.
func TestDiscovery_StopDuringTheConnectIsNotARegistryError(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, filepath.Join(dir, "user.json"), inst(1).String())
	logs := &syncbuf.Buffer{}
	src, err := Discovery(blocked{}, dir, WithConnectWait(time.Millisecond), WithLogger(log.NewLogfmtLogger(logs))).Instancer(context.Background(), "user")
	if err != nil {
		t.Fatal(err)
	}
	src.Stop()
	if st := src.(*Instancer).State(); st.LastError != "" {
		t.Fatalf("state %+v after Stop; want no error (the registry was never asked to the end)", st)
	}
	if strings.Contains(logs.String(), "canceled") {
		t.Fatalf("Stop logged as a registry error:\n%s", logs.String())
	}
}

// blocked is a registry whose instancer cannot be made until ctx ends.
type blocked struct{}

func (blocked) Instancer(ctx context.Context, _ string) (sd.Instancer, error) {
	<-ctx.Done()
	return nil, errors.Join(errors.New("dial registry"), ctx.Err())
}

// Two Instancers writing one file (two clients of a service in one
// process, or two processes sharing --snapshot-dir): a reader sees one
// whole file or the other, never a torn one, and no temp file is left.
// A guard: it passes on the code before audit s2 (but for the service
// name, which New now writes: TestNew_NamesTheServiceInTheFileItStarts).
func TestInstancer_TwoWritersOfOneFileNeverTearIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "user.json")
	fast := func(s *Instancer) error { s.writeEvery = time.Millisecond; return nil }
	w1, w2 := must(New(silent{}, path, fast)), must(New(silent{}, path, fast))
	defer w1.Stop()
	defer w2.Stop()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, w := range []*Instancer{w1, w2} {
		wg.Go(func() { // ends at stop or after 300 sets
			for n := range 300 {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				set := []string{inst(1 + i).String()}
				if n%2 == 1 {
					set = append(set, inst(10+i).String())
				}
				w.handle(sd.Event{Instances: set})
			}
		})
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }() // ends when both writers have
	defer func() { close(stop); <-writing }()
	waitFor(t, "the first file", func() bool { _, err := os.Stat(path); return err == nil })
	deadline := time.After(20 * time.Second)
	for reads := 0; ; reads++ {
		select {
		case <-writing:
			if reads < 10 {
				t.Fatalf("only %d reads while the writers wrote", reads)
			}
			w1.Stop()
			w2.Stop()
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("dir holds %d entries after both stopped (temp files left?)", len(entries))
			}
			return
		case <-deadline:
			t.Fatal("writers not done within 20s")
		default:
		}
		if f, err := readFile(path); err != nil || f.Service != "user" || len(f.Instances) == 0 {
			t.Fatalf("read %d: %+v, %v", reads, f, err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// Stop called twice, at once, while a write hangs: both wait for it, the
// pending set is written, and neither returns before the write does.
// A guard: it passes on the code before audit s2.
func TestInstancer_StopTwiceDuringAWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s := must(New(silent{}, path, func(s *Instancer) error {
		s.writeEvery = time.Hour
		s.writeFn = func(path string, f file) error {
			once.Do(func() { close(entered) })
			<-release
			return writeFile(path, f)
		}
		return nil
	}))
	one := []string{inst(1).String()}
	s.handle(sd.Event{Instances: one})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the write did not start within 10s")
	}
	stopped := make(chan struct{}, 2)
	for range 2 {
		go func() { s.Stop(); stopped <- struct{}{} }() // ends once the write is released
	}
	select {
	case <-stopped:
		close(release)
		t.Fatal("Stop returned while the write hung")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	for range 2 {
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("Stop did not return within 10s of the write")
		}
	}
	if f, err := readFile(path); err != nil || len(f.Instances) != 1 {
		t.Fatalf("file = %+v, %v", f, err)
	}
}

// New, which has no service name but the file's, names the service in the
// file it writes when there was none before: the next start's stale
// observer (a metric label) and log lines then name the service, and
// Discovery reading the same file serves it. Before, the file said
// service "" and so did the next start's metric.
func TestNew_NamesTheServiceInTheFileItStarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	reg := memory.New()
	defer reg.Close()
	_ = reg.Register(context.Background(), inst(1))
	inner, _ := reg.Instancer(context.Background(), "user")
	s := must(New(inner, path))
	waitFor(t, "the file written", func() bool { _, err := readFile(path); return err == nil })
	s.Stop()
	if f, _ := readFile(path); f.Service != "user" {
		t.Fatalf("file names service %q, want user", f.Service)
	}
	g := newGauge()
	s = must(New(silent{}, path, WithConnectWait(time.Millisecond), WithStaleObserver(g.set)))
	defer s.Stop()
	waitFor(t, "the snapshot announced under the service's name", func() bool { return g.get("user") })
}
