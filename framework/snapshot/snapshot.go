// Package snapshot keeps a service's last good instance set on disk, so a
// client that starts while the registry is unreachable can still call the
// service at once, from the instances it saw last time.
//
// An Instancer wraps a live sd.Instancer: every good set it delivers is
// passed on and written to a small JSON file (temp file + rename, so a
// crash never leaves half a file). At start the file, if any, is served
// straight away and marked stale (logged, and shown by State) until the
// registry answers; from then on the registry's sets win.
//
// Discovery wraps a registry.Discovery the same way for every service, and
// also covers a registry that cannot even be asked at start: it serves the
// snapshot and keeps trying to connect in the background.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// fileVersion is the schema version of the file; a file with another
// version is ignored rather than guessed at.
const fileVersion = 1

type file struct {
	V         int       `json:"v"`
	Service   string    `json:"service"`
	Written   time.Time `json:"written"`
	Instances []string  `json:"instances"`
}

// Source says where the instances being served come from.
type Source string

// Sources.
const (
	SourceNone     Source = "none"     // nothing known yet
	SourceSnapshot Source = "snapshot" // the file: stale
	SourceRegistry Source = "registry" // the live registry
)

// State is what an Instancer is serving, for /readyz and debugging.
type State struct {
	Source    Source    `json:"source"`
	Stale     bool      `json:"stale"`
	Instances int       `json:"instances"`
	Since     time.Time `json:"since"`
	// SnapshotWritten is when the served or last written file was written.
	SnapshotWritten time.Time `json:"snapshot_written,omitzero"`
	// LastError is the latest registry or file error, kept for context.
	LastError string `json:"last_error,omitempty"`
}

// Instancer is an sd.Instancer that falls back to the snapshot file.
//
// It owns three goroutines: one connects to the registry (at once when
// the wrapped instancer is given, with backoff when it must be created),
// one reads the registry's events, one writes the file. Stop ends them,
// deregisters from and stops the wrapped instancer. Stop is idempotent.
type Instancer struct {
	*registry.Cache

	path, service string
	logger        log.Logger
	minWait       time.Duration
	maxWait       time.Duration
	connectWait   time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	events chan sd.Event
	// deltas takes the changes of an inner registry.DeltaInstancer, so a
	// change costs its own size here, not the set's (whole sets cost this
	// layer O(N) per change: a 10k-instance client under churn stayed
	// 42 s behind, report j52a). mirror is the inner's set, kept from
	// them for the first good answer after the snapshot; both are the
	// receive goroutine's.
	deltas   chan registry.Delta
	mirror   map[string]struct{}
	recvStop chan struct{}
	recvDone chan struct{}
	connDone chan struct{}
	live     chan struct{} // closed by the registry's first good set
	liveOnce sync.Once
	stopOnce sync.Once

	staleObs func(service string, stale bool)

	// The file is written off the event path, at most once per
	// writeEvery: at 10k instances a write is a sort, a megabyte of JSON
	// and an fsync, and made per change on the reader's goroutine it held
	// up the registry's watch — a client fell minutes behind a churning
	// service (report j50d).
	writeEvery time.Duration
	writeFn    func(path string, f file) error
	writeReq   chan struct{} // cap 1: a set is pending
	writeDone  chan struct{}

	mu        sync.Mutex
	inner     sd.Instancer
	dinner    registry.DeltaInstancer // inner, subscribed by its deltas
	state     State
	written   []string // last set on disk
	dirty     bool     // a good set came that is not written yet
	erring    bool     // the registry's last event was an error
	announced bool     // the stale snapshot was announced (log, observer)
	stopped   bool     // Stop began: nothing is announced any more
	// announceAt announces the snapshot after the connect wait (New's);
	// Stop stops it.
	announceAt *time.Timer
}

// Option configures an Instancer or Discovery. An option given a bad value
// makes New (or Discovery's Instancer) fail with an error that names it.
type Option func(*Instancer) error

// WithLogger sets where stale-mode and write errors are logged (default
// nowhere).
func WithLogger(l log.Logger) Option {
	return func(s *Instancer) error {
		if l == nil {
			return errors.New("snapshot.WithLogger(nil)")
		}
		s.logger = l
		return nil
	}
}

// WithStaleObserver calls f with true when the Instancer starts serving
// the snapshot file and with false when the registry's first answer
// replaces it or Stop ends it, for a metric: "serving stale discovery" is
// otherwise in the log and State only. f hears true at most once and
// false once after it, so several Instancers of one service can share a
// counting f (package metrics' does). f is called with the Instancer's
// lock held, so the calls come in the order of the changes: it must not
// block.
func WithStaleObserver(f func(service string, stale bool)) Option {
	return func(s *Instancer) error {
		if f == nil {
			return errors.New("snapshot.WithStaleObserver(nil)")
		}
		s.staleObs = f
		return nil
	}
}

// WithReconnectBackoff sets the delays between attempts to create the
// registry's instancer when Discovery could not at start (default 100ms
// doubling to 10s).
func WithReconnectBackoff(minWait, maxWait time.Duration) Option {
	return func(s *Instancer) error {
		if minWait <= 0 || maxWait < minWait {
			return fmt.Errorf("snapshot.WithReconnectBackoff(%s, %s): want 0 < min ≤ max", minWait, maxWait)
		}
		s.minWait, s.maxWait = minWait, maxWait
		return nil
	}
}

// WithConnectWait sets how long Discovery waits for the registry's first set
// before serving the snapshot instead, when there is one (default 250ms).
// A reachable registry answers well within it, so the caller starts from
// the live set; an unreachable one costs the caller only this long, not
// the registry client's own start-up wait (etcd's WithInitialWait, 3 s).
func WithConnectWait(d time.Duration) Option {
	return func(s *Instancer) error {
		if d < 0 {
			return fmt.Errorf("snapshot.WithConnectWait(%s): must not be negative", d)
		}
		s.connectWait = d
		return nil
	}
}

// New wraps inner, keeping its sets in the file at path. The Instancer
// takes ownership of inner: its Stop stops inner.
func New(inner sd.Instancer, path string, opts ...Option) (*Instancer, error) {
	s, err := newInstancer(path, "", opts)
	if err != nil {
		return nil, err
	}
	s.start(func(context.Context) (sd.Instancer, error) { return inner, nil })
	if s.State().Stale {
		// Said only if inner has not answered by then (see waitLive).
		s.mu.Lock()
		s.announceAt = time.AfterFunc(s.connectWait, s.announceStale)
		s.mu.Unlock()
	}
	return s, nil
}

func newInstancer(path, service string, opts []Option) (*Instancer, error) {
	s := &Instancer{
		Cache:       registry.NewCache(),
		path:        path,
		service:     service,
		logger:      log.NewNopLogger(),
		minWait:     100 * time.Millisecond,
		connectWait: 250 * time.Millisecond,
		maxWait:     10 * time.Second,
		writeEvery:  time.Second,
		writeFn:     writeFile,
		writeReq:    make(chan struct{}, 1),
		writeDone:   make(chan struct{}),
		live:        make(chan struct{}),
		events:      make(chan sd.Event),
		deltas:      make(chan registry.Delta),
		mirror:      map[string]struct{}{},
		recvStop:    make(chan struct{}),
		recvDone:    make(chan struct{}),
		connDone:    make(chan struct{}),
		state:       State{Source: SourceNone, Since: time.Now()},
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("snapshot: nil option")
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.loadFile()
	return s, nil
}

// loadFile serves the snapshot, if there is a usable one.
func (s *Instancer) loadFile() bool {
	f, err := readFile(s.path)
	if err == nil && s.service != "" && f.Service != "" && f.Service != s.service {
		// Another service's file (copied in, or a name two services
		// share on a case-insensitive disk): not this service's instances.
		// One that names none was written by New before it named it.
		err = fmt.Errorf("snapshot %s: of service %q, not %q", s.path, f.Service, s.service)
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			level.Warn(s.logger).Log("msg", "ignoring unreadable instance snapshot", "path", s.path, "err", err)
			s.state.LastError = err.Error()
		}
		return false
	}
	if s.service == "" {
		s.service = f.Service
	}
	s.written = f.Instances
	s.state = State{Source: SourceSnapshot, Stale: true, Instances: len(f.Instances), Since: time.Now(), SnapshotWritten: f.Written}
	s.Update(sd.Event{Instances: f.Instances})
	return true
}

// announceStale logs, once, that the snapshot is served, and tells the
// stale observer — when the registry has not answered within the connect
// wait, or failed. At load it was said at every start, even with a
// registry that answered in milliseconds (report j50d).
func (s *Instancer) announceStale() {
	s.mu.Lock()
	if !s.state.Stale || s.announced || s.stopped {
		s.mu.Unlock()
		return
	}
	s.announced = true
	st := s.state
	// Told under mu, as handle and Stop tell false, so the observer hears
	// the changes in their order: told after the log line, true could
	// overtake the registry's answer and stay (audit s2).
	if s.staleObs != nil {
		s.staleObs(s.service, true)
	}
	s.mu.Unlock()
	level.Warn(s.logger).Log("msg", "serving stale instance snapshot until the registry answers",
		"service", s.service, "path", s.path, "instances", st.Instances, "written", st.SnapshotWritten)
}

func (s *Instancer) start(connect func(context.Context) (sd.Instancer, error)) {
	go s.receive()
	go s.writer()
	go s.connect(connect)
}

// waitLive waits up to the connect wait for the registry's first good
// set; if it has not come, the snapshot is announced as served.
func (s *Instancer) waitLive(ctx context.Context) {
	t := time.NewTimer(s.connectWait)
	defer t.Stop()
	select {
	case <-s.live:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	s.announceStale()
}

func (s *Instancer) connect(connect func(context.Context) (sd.Instancer, error)) {
	defer close(s.connDone)
	bo := backoff.New(s.minWait, s.maxWait)
	for {
		inner, err := connect(s.ctx)
		if err == nil {
			// Register sends the current set synchronously; receive is
			// already running to take it.
			if d, ok := inner.(registry.DeltaInstancer); ok {
				s.mu.Lock()
				s.inner, s.dinner = inner, d
				s.mu.Unlock()
				d.RegisterDelta(s.deltas)
				return
			}
			s.mu.Lock()
			s.inner = inner
			s.mu.Unlock()
			inner.Register(s.events)
			return
		}
		if s.ctx.Err() != nil {
			return // Stop cancelled the attempt: not the registry's error
		}
		s.noteError(err)
		if !backoff.Sleep(s.ctx, bo.Next()) {
			return
		}
	}
}

func (s *Instancer) receive() {
	defer close(s.recvDone)
	for {
		select {
		case ev := <-s.events:
			s.handle(ev)
		case d := <-s.deltas:
			s.handleDelta(d)
		case <-s.recvStop:
			return
		}
	}
}

func (s *Instancer) handle(ev sd.Event) {
	s.mu.Lock()
	stale := s.state.Stale
	s.mu.Unlock()
	if ev.Err != nil {
		s.noteError(ev.Err)
		if stale {
			return // keep serving the snapshot; the error says nothing new
		}
		s.Update(ev)
		return
	}
	s.mu.Lock()
	s.erring = false
	if stale && s.announced {
		level.Info(s.logger).Log("msg", "registry answered; leaving stale snapshot", "service", s.service, "instances", len(ev.Instances))
		if s.staleObs != nil {
			s.staleObs(s.service, false)
		}
	}
	s.state.Source, s.state.Stale, s.state.Instances = SourceRegistry, false, len(ev.Instances)
	if stale || s.state.Since.IsZero() {
		s.state.Since = time.Now()
	}
	s.mu.Unlock()
	s.liveOnce.Do(func() { close(s.live) })
	s.Update(ev)
	s.markDirty(len(ev.Instances))
}

// handleDelta is handle for one change of a DeltaInstancer: applied as it
// is once the registry's sets are served; the first good one (after the
// snapshot, or the first at all) goes through handle with the whole set.
func (s *Instancer) handleDelta(d registry.Delta) {
	for _, r := range d.Removed {
		delete(s.mirror, r)
	}
	for _, a := range d.Added {
		s.mirror[a] = struct{}{}
	}
	s.mu.Lock()
	serving := s.state.Source == SourceRegistry && !s.state.Stale
	s.mu.Unlock()
	if !serving {
		all := make([]string, 0, len(s.mirror))
		for inst := range s.mirror {
			all = append(all, inst)
		}
		s.handle(sd.Event{Instances: all, Err: d.Err})
		return
	}
	if d.Err != nil {
		s.noteError(d.Err)
	} else {
		s.mu.Lock()
		s.erring = false
		s.state.Instances = len(s.mirror)
		s.mu.Unlock()
	}
	s.Apply(d.Added, d.Removed, d.Err)
	if d.Err == nil {
		s.markDirty(len(s.mirror))
	}
}

// markDirty asks the writer for the current set, if it has n > 0
// instances (an empty set is not written).
func (s *Instancer) markDirty(n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
	select {
	case s.writeReq <- struct{}{}:
	default: // a write is asked for already; it takes the latest set
	}
}

// writer writes the latest pending set, then waits writeEvery before the
// next, so a burst of changes costs one write of its last set; at Stop it
// writes what is still pending.
func (s *Instancer) writer() {
	defer close(s.writeDone)
	for {
		select {
		case <-s.writeReq:
		case <-s.recvStop:
			s.flush()
			return
		}
		s.flush()
		t := time.NewTimer(s.writeEvery)
		select {
		case <-t.C:
		case <-s.recvStop:
			t.Stop()
			s.flush()
			return
		}
	}
}

// flush writes the current set, if a good one came since the last write.
func (s *Instancer) flush() {
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = false
	s.mu.Unlock()
	if dirty {
		s.save(s.Cache.State().Instances)
	}
}

// noteError keeps err for State and logs it once per run of errors: the
// registry's instancer logs the outage itself (and its end), so a line
// here per error event only repeated it. What this layer adds is that the
// snapshot is being served, which it says once.
func (s *Instancer) noteError(err error) {
	s.mu.Lock()
	s.state.LastError = err.Error()
	stale, first := s.state.Stale, !s.erring
	s.erring = true
	s.mu.Unlock()
	switch {
	case stale && first:
		level.Warn(s.logger).Log("msg", "registry unreachable; serving stale snapshot", "service", s.service, "err", err)
		s.announceStale()
	default:
		level.Debug(s.logger).Log("msg", "registry error", "service", s.service, "stale", stale, "err", err)
	}
}

// save writes a good, non-empty set that differs from the file. An empty
// set is not written: it is a poor thing to fall back to.
func (s *Instancer) save(instances []string) {
	set := slices.Sorted(slices.Values(instances))
	s.mu.Lock()
	same := slices.Equal(set, s.written)
	s.mu.Unlock()
	if len(set) == 0 || same {
		return
	}
	service := s.service
	if service == "" {
		// New with no file knows no name: the records carry it, and the
		// next start's log and stale observer (a metric label) need it.
		if inst, err := registry.ParseInstance(set[0]); err == nil {
			service = inst.Name
		}
	}
	now := time.Now()
	if err := s.writeFn(s.path, file{V: fileVersion, Service: service, Written: now.UTC(), Instances: set}); err != nil {
		level.Error(s.logger).Log("msg", "cannot write instance snapshot", "path", s.path, "err", err)
		s.mu.Lock()
		s.state.LastError = err.Error()
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.written = set
	s.state.SnapshotWritten = now
	s.mu.Unlock()
}

// State returns what the Instancer is serving.
func (s *Instancer) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Stop implements sd.Instancer.
func (s *Instancer) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		if s.announceAt != nil {
			s.announceAt.Stop()
		}
		// Nothing is served from the snapshot any more: a metric left at
		// stale outlived the client, and the service's next client,
		// finding the registry up, never set it back (audit s2).
		if s.announced && s.state.Stale && s.staleObs != nil {
			s.staleObs(s.service, false)
		}
		// Told once: a registry answer handled before the inner is
		// deregistered told false again, taking another instancer's
		// count from a shared metric (audit m4).
		s.announced = false
		s.mu.Unlock()
		s.cancel()
		<-s.connDone
		s.mu.Lock()
		inner, dinner := s.inner, s.dinner
		s.mu.Unlock()
		// receive is still reading, so a send in flight completes.
		switch {
		case dinner != nil:
			dinner.DeregisterDelta(s.deltas)
		case inner != nil:
			inner.Deregister(s.events)
		}
		close(s.recvStop)
		<-s.recvDone
		<-s.writeDone // after its last write
		if inner != nil {
			inner.Stop()
		}
	})
}

func readFile(path string) (file, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return file{}, err
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return file{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if f.V != fileVersion {
		return file{}, fmt.Errorf("snapshot %s: version %d, want %d", path, f.V, fileVersion)
	}
	good := f.Instances[:0]
	for _, in := range f.Instances {
		if _, err := registry.ParseInstance(in); err == nil {
			good = append(good, in)
		}
	}
	if len(good) == 0 {
		return file{}, fmt.Errorf("snapshot %s: no usable instances", path)
	}
	f.Instances = good
	return f, nil
}

// CheckDir makes dir if need be and writes and removes a small file in it,
// as every snapshot is written: a process can check at start that its
// snapshots will land. Without it an unwritable --snapshot-dir (a full
// or read-only disk, a regular file) showed only as an error line per
// write while the service ran without its safety net (report j53d
// finding 9).
func CheckDir(dir string) error {
	if dir == "" {
		return errors.New("snapshot: no directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".write-check.*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write([]byte(`{"check":true}`)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	return tmp.Close()
}

// writeFile replaces path atomically: readers see the old file or the new
// one, never a torn write, even if the process dies half way.
func writeFile(path string, f file) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Discovery wraps d so every service's instancer keeps a snapshot in dir
// (one file per service, <dir>/<service>.json).
//
// When a snapshot exists, Instancer creates d's instancer in the
// background (retrying it until it works) and returns as soon as d has
// answered, or after WithConnectWait: a registry that is down or slow to
// answer never holds the caller up longer than that, and the snapshot is
// served until d answers. With no snapshot it returns d's instancer or
// error, as d would.
func Discovery(d registry.Discovery, dir string, opts ...Option) registry.Discovery {
	return discovery{d: d, dir: dir, opts: opts}
}

type discovery struct {
	d    registry.Discovery
	dir  string
	opts []Option
}

func (x discovery) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	if !registry.ValidName(service) {
		return nil, fmt.Errorf("%w: service name %q", registry.ErrInvalidInstance, service)
	}
	path := filepath.Join(x.dir, service+".json")
	s, err := newInstancer(path, service, x.opts)
	if err != nil {
		return nil, err
	}
	if !s.State().Stale {
		// No snapshot: the registry's answer, or its error, is all there is.
		inner, err := x.d.Instancer(ctx, service)
		if err != nil {
			s.cancel()
			return nil, err
		}
		s.start(func(context.Context) (sd.Instancer, error) { return inner, nil })
		return s, nil
	}
	// A snapshot is served. Creating the registry's instancer may block for
	// as long as the registry is unreachable (etcd's waits for its first
	// listing), so it runs in the background, retried until it works; a
	// registry that answers within connectWait still hands the caller the
	// live set from the start.
	s.start(func(ctx context.Context) (sd.Instancer, error) { return x.d.Instancer(ctx, service) })
	s.waitLive(ctx)
	return s, nil
}
