package edge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

func inst(svc string, port int) registry.Instance {
	return registry.Instance{ID: fmt.Sprintf("%s-%d", svc, port), Name: svc, Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
}

// recorder keeps every snapshot applied.
type recorder struct {
	mu    sync.Mutex
	snaps []edge.Snapshot
	fail  int // fail this many applies first
	seen  chan struct{}
}

func newRecorder() *recorder { return &recorder{seen: make(chan struct{}, 100)} }

func (r *recorder) apply(_ context.Context, s edge.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("refused on purpose")
	}
	r.snaps = append(r.snaps, s)
	select {
	case r.seen <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) all() []edge.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]edge.Snapshot(nil), r.snaps...)
}

// waitFor waits (20 s at most) until an applied snapshot satisfies ok.
func (r *recorder) waitFor(t *testing.T, what string, ok func(edge.Snapshot) bool) edge.Snapshot {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if s := r.all(); len(s) > 0 && ok(s[len(s)-1]) {
			return s[len(s)-1]
		}
		select {
		case <-r.seen:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no snapshot with %s within 20 s; applied: %v", what, summaries(r.all()))
		}
	}
}

func summaries(ss []edge.Snapshot) []string {
	var out []string
	for _, s := range ss {
		out = append(out, edge.Summary(s))
	}
	return out
}

func count(svc string, n int) func(edge.Snapshot) bool {
	return func(s edge.Snapshot) bool {
		x, ok := s.Service(svc)
		return ok && len(x.Instances) == n
	}
}

func run(t *testing.T, w *edge.Watcher, apply func(context.Context, edge.Snapshot) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, apply) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of its context ending")
		}
	})
}

func TestWatcher_FollowsRegisterAndDeregisterOfEveryService(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	ctx := context.Background()
	if err := reg.Register(ctx, inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	w, err := edge.NewWatcher(srv.Registry(), []string{"user", "order"}, edge.WithDebounce(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	run(t, w, rec.apply)
	first := rec.waitFor(t, "user=1", count("user", 1))
	if first.Version != 1 || len(first.Services) != 2 || first.Services[0].Name != "user" || first.Services[1].Name != "order" {
		t.Fatalf("first snapshot %+v: want version 1 with user then order, as listed", first)
	}
	if err := reg.Register(ctx, inst("order", 2001)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "order=1", count("order", 1))
	if err := reg.Deregister(ctx, inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	s := rec.waitFor(t, "user=0", count("user", 0))
	if o, _ := s.Service("order"); len(o.Instances) != 1 || o.Instances[0].ID != "order-2001" {
		t.Fatalf("order after user left: %+v", o)
	}
	var last uint64
	for _, s := range rec.all() {
		if s.Version <= last {
			t.Fatalf("versions not increasing: %v", rec.all())
		}
		last = s.Version
	}
}

// A burst of changes closer together than the debounce is one apply.
func TestWatcher_ABurstOfChangesIsOneApply(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	ctx := context.Background()
	w, err := edge.NewWatcher(srv.Registry(), []string{"user"}, edge.WithDebounce(5*time.Second), edge.WithMaxDelay(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	run(t, w, rec.apply)
	rec.waitFor(t, "the empty start", count("user", 0))
	for i := range 5 {
		if err := reg.Register(ctx, inst("user", 1000+i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // spread the burst: each change alone would be applied without the debounce
	}
	rec.waitFor(t, "user=5", count("user", 5))
	if got := rec.all(); len(got) != 2 {
		t.Fatalf("applies: %v; want the empty start and one with all five", summaries(got))
	}
}

// A failed apply is retried with the same set until it succeeds.
func TestWatcher_RetriesAFailedApply(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	if err := reg.Register(context.Background(), inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	w, err := edge.NewWatcher(srv.Registry(), []string{"user"}, edge.WithRetry(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	rec.fail = 3
	run(t, w, rec.apply)
	s := rec.waitFor(t, "user=1", count("user", 1))
	if s.Oldest.IsZero() {
		t.Fatalf("retried snapshot lost the time of its change: %+v", s)
	}
}

// The first snapshot waits until every service was listed, so a proxy
// never starts with a service empty only because its listing was late.
func TestWatcher_FirstSnapshotWaitsForEveryServiceUntilTheStartWait(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	slow := &slowDiscovery{Discovery: srv.Registry(), service: "order", release: make(chan struct{})}
	if err := reg.Register(context.Background(), inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	w, err := edge.NewWatcher(slow, []string{"user", "order"}, edge.WithStartWait(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	run(t, w, rec.apply)
	time.Sleep(500 * time.Millisecond)
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("applied %v before order was listed", summaries(got))
	}
	close(slow.release)
	rec.waitFor(t, "user=1 once order is listed", count("user", 1))
}

func TestNewWatcher_RefusesBadInput(t *testing.T) {
	d := memory.New()
	defer d.Close()
	for name, c := range map[string]struct {
		svcs []string
		opts []edge.Option
	}{
		"no service":      {nil, nil},
		"bad name":        {[]string{"User!"}, nil},
		"twice":           {[]string{"user", "user"}, nil},
		"negative":        {[]string{"user"}, []edge.Option{edge.WithDebounce(-1)}},
		"max < debounce":  {[]string{"user"}, []edge.Option{edge.WithDebounce(time.Second), edge.WithMaxDelay(time.Millisecond)}},
		"zero start wait": {[]string{"user"}, []edge.Option{edge.WithStartWait(0)}},
	} {
		if _, err := edge.NewWatcher(d, c.svcs, c.opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A retried apply carries the version of the set it retries: Version
// counts sets, not attempts (tester's finding 3: the log's version
// climbed on every retry).
func TestWatcher_ARetryKeepsTheVersionOfTheSetItRetries(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	if err := reg.Register(context.Background(), inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	w, err := edge.NewWatcher(srv.Registry(), []string{"user"}, edge.WithRetry(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	rec.fail = 5
	run(t, w, rec.apply)
	if s := rec.waitFor(t, "user=1", count("user", 1)); s.Version != 1 {
		t.Fatalf("the first set, applied on its sixth attempt, has version %d; want 1", s.Version)
	}
}

// A failing apply is logged once per set and error, not on every retry
// (report j48a 5: a broken template logged the same line every 5 s); a
// different error, or a new set, is logged again, and the success that
// ends the failures says so.
func TestWatcher_AFailingApplyIsLoggedOncePerSetAndError(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	if err := reg.Register(context.Background(), inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	w, err := edge.NewWatcher(srv.Registry(), []string{"user"}, edge.WithRetry(10*time.Millisecond), edge.WithLogger(log.NewLogfmtLogger(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := 0
	rec := newRecorder()
	run(t, w, func(ctx context.Context, s edge.Snapshot) error {
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		switch {
		case n <= 10:
			// nginx's own message: a timestamp and PIDs that differ on
			// every try of the same failure (report j49b).
			return fmt.Errorf("nginx -t: 2026/12/06 07:00:%02d [emerg] %d#%d: unknown directive", n, 4000+n, 4000+n)
		case n <= 20:
			return errors.New("reload failed")
		}
		return rec.apply(ctx, s)
	})
	rec.waitFor(t, "user=1", count("user", 1))
	// The success is logged after the apply returns, which is when the
	// recorder saw it: wait for the line.
	for end := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "apply succeeded after failing") && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	if n := strings.Count(out, "apply failed"); n != 2 {
		t.Fatalf("%d 'apply failed' lines for 20 failed attempts with two errors; want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "apply succeeded after failing") || !strings.Contains(out, "failed_attempts=10") {
		t.Fatalf("no line for the success that ended the failures:\n%s", out)
	}
}
