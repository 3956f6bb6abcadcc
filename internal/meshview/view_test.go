package meshview

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// fakeInstance is a real HTTP server with a service's /readyz, and a
// debug server with real Warren metrics series (package metrics).
type fakeInstance struct {
	svc, dbg *httptest.Server
	client   *metrics.Client
	inst     registry.Instance
	// draining and unregistered fail its /readyz checks of those names,
	// as framework/app's do while it shuts down or its registrar retries.
	draining     atomic.Bool
	unregistered atomic.Pointer[string]
}

func startInstance(t *testing.T, service, id, zone string) *fakeInstance {
	t.Helper()
	prom := metrics.NewRegistry()
	router := httptransport.NewRouter()
	router.Handle("GET /work/{n}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("n") == "fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, "{}")
	}))
	ready := health.NewSet(time.Second)
	f := &fakeInstance{}
	ready.Add("registered", func(context.Context) error {
		if why := f.unregistered.Load(); why != nil {
			return errors.New(*why)
		}
		return nil
	})
	ready.Add("draining", func(context.Context) error {
		if f.draining.Load() {
			return errors.New("draining: shutting down")
		}
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", health.Handler(ready, nil))
	mux.Handle("/", metrics.NewServer(prom).Middleware(router))
	f.svc, f.dbg, f.client = httptest.NewServer(mux), httptest.NewServer(metrics.Handler(prom)), metrics.NewClient(prom)
	t.Cleanup(f.svc.Close)
	t.Cleanup(f.dbg.Close)
	f.inst = registry.Instance{ID: id, Name: service, Endpoints: []string{f.svc.URL}, Zone: zone, Version: "1.0.0",
		Metadata: map[string]string{app.MetricsMetadataKey: f.dbg.URL + "/metrics", app.RegisteredMetadataKey: "2026-12-02T08:00:00Z"}}
	return f
}

func (f *fakeInstance) get(t *testing.T, path string) {
	t.Helper()
	resp, err := http.Get(f.svc.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func runView(t *testing.T, d registry.Discovery, opts ...Option) *View {
	t.Helper()
	v, err := New(d, append([]Option{WithProbeEvery(100 * time.Millisecond), WithWindow(2 * time.Second), WithCatalogEvery(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("View.Run did not return after its context ended")
		}
	})
	return v
}

// eventually polls the view's snapshot until ok (bounded).
func eventually(t *testing.T, v *View, what string, ok func(Snapshot) bool) Snapshot {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := v.Snapshot()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s, "", "  ")
			t.Fatalf("timed out waiting for %s; view:\n%s", what, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func find(s Snapshot, service, id string) *Instance {
	for _, svc := range s.Services {
		if svc.Name == service {
			for i := range svc.Instances {
				if svc.Instances[i].ID == id {
					return &svc.Instances[i]
				}
			}
		}
	}
	return nil
}

func hasEvent(s Snapshot, kind, service, id string) bool {
	for _, e := range s.Events {
		if e.Kind == kind && e.Service == service && e.Instance == id {
			return true
		}
	}
	return false
}

func TestView_RecordReadinessTrafficBreakersAndTimeline(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	u1, u2 := startInstance(t, "user", "user-1", "zone-a"), startInstance(t, "user", "user-2", "zone-b")
	o1 := startInstance(t, "order", "order-1", "zone-a")
	ctx := context.Background()
	for _, f := range []*fakeInstance{u1, u2, o1} {
		if err := reg.Register(ctx, f.inst); err != nil {
			t.Fatal(err)
		}
	}
	// The view is a separate client, and finds the services itself
	// (memory is a registry.Catalog).
	v := runView(t, srv.Registry(), WithRegistryName("memory"))

	s := eventually(t, v, "three instances, probed", func(s Snapshot) bool {
		a, b, c := find(s, "user", "user-1"), find(s, "user", "user-2"), find(s, "order", "order-1")
		return a != nil && b != nil && c != nil && a.Readiness != nil && a.Readiness.Ready && c.Readiness != nil
	})
	got := find(s, "user", "user-1")
	if got.Zone != "zone-a" || got.Version != "1.0.0" || got.Weight != registry.DefaultWeight || got.Endpoints[0] != u1.svc.URL ||
		got.Registered.IsZero() || !got.Readiness.Checks["registered"].OK {
		t.Errorf("user-1 = %+v", got)
	}
	if s.Registry != "memory" || !hasEvent(s, KindRegister, "user", "user-1") || !hasEvent(s, KindRegister, "order", "order-1") {
		t.Errorf("snapshot %+v lacks the registry name or the register events", s)
	}

	// Traffic: one request in four fails. Rates need two scrapes around it.
	for i := range 40 {
		if i%4 == 0 {
			u1.get(t, "/work/fail")
		} else {
			u1.get(t, "/work/ok")
		}
	}
	s = eventually(t, v, "user-1's traffic", func(s Snapshot) bool {
		tr := find(s, "user", "user-1").Traffic
		return tr != nil && tr.RequestsPerSec > 0 && tr.ErrorRatio > 0.2 && tr.ErrorRatio < 0.3 && tr.P50ms != nil && tr.P99ms != nil
	})

	// order-1's client ejects user-2, as its outlier detector reports it.
	o1.client.Picked("user", "user-2")
	o1.client.BreakerChanged("user", "user-2", outlier.Closed, outlier.Open)
	s = eventually(t, v, "user-2 ejected by order-1", func(s Snapshot) bool {
		return find(s, "user", "user-2").Breakers["order-1"] == "open" && hasEvent(s, KindEject, "user", "user-2")
	})
	o1.client.BreakerChanged("user", "user-2", outlier.Open, outlier.Closed)
	eventually(t, v, "user-2 restored", func(s Snapshot) bool {
		return find(s, "user", "user-2").Breakers == nil && hasEvent(s, KindRestore, "user", "user-2")
	})

	// A withdrawal while the process answers (draining, as a shutting
	// down service is), and a record that outlives its process.
	u2.draining.Store(true)
	if err := reg.Deregister(ctx, u2.inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, v, "user-2 withdrawn", func(s Snapshot) bool {
		return find(s, "user", "user-2") == nil && hasEvent(s, KindWithdraw, "user", "user-2")
	})
	u1.svc.CloseClientConnections()
	u1.svc.Close()
	eventually(t, v, "user-1 unreachable", func(s Snapshot) bool {
		r := find(s, "user", "user-1").Readiness
		return r != nil && !r.Reachable
	})
	if err := reg.Deregister(ctx, u1.inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, v, "user-1 expired", func(s Snapshot) bool {
		return find(s, "user", "user-1") == nil && hasEvent(s, KindExpire, "user", "user-1")
	})
}

// noCatalog hides the memory backend's Catalog.
type noCatalog struct{ registry.Discovery }

func TestNew_ABackendWithoutCatalogNeedsServiceNames(t *testing.T) {
	d := noCatalog{memory.New()}
	if _, err := New(d); err == nil {
		t.Fatal("New without services on a backend that cannot list them: no error")
	}
	if _, err := New(d, WithServices("Bad_Name")); err == nil {
		t.Fatal("WithServices accepted an invalid name")
	}
	srv := memory.NewServer()
	f := startInstance(t, "user", "user-1", "zone-a")
	if err := srv.Registry().Register(context.Background(), f.inst); err != nil {
		t.Fatal(err)
	}
	v := runView(t, noCatalog{srv.Registry()}, WithServices("user"))
	eventually(t, v, "the named service", func(s Snapshot) bool { return find(s, "user", "user-1") != nil })
}

// sseReader reads "state" events from /api/events.
func sseStates(t *testing.T, url string) (<-chan Snapshot, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	ch := make(chan Snapshot, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by the test: ends when the body is closed
		defer wg.Done()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "state":
				var s Snapshot
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &s) == nil {
					select {
					case ch <- s:
					default: // the test reads the latest; dropping is fine
					}
				}
			}
		}
	}()
	return ch, func() { cancel(); resp.Body.Close(); wg.Wait() }
}

// serveStream serves v's page on a free port until the test ends, opens
// its event stream and waits for the first state; it returns the page's
// base URL and the states that follow.
func serveStream(t *testing.T, v *View, opts ...HandlerOption) (string, <-chan Snapshot) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: Handler(v, opts...)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	base := "http://" + ln.Addr().String()
	states, stop := sseStates(t, base+"/api/events")
	t.Cleanup(stop)
	select {
	case <-states:
	case <-time.After(30 * time.Second):
		t.Fatal("no state event at once")
	}
	return base, states
}

func TestHandler_StreamsStateAndServesOnlyItsOwnFiles(t *testing.T) {
	srv := memory.NewServer()
	v := runView(t, srv.Registry())
	base, states := serveStream(t, v, WithMinInterval(10*time.Millisecond))
	f := startInstance(t, "user", "user-1", "zone-a")
	if err := srv.Registry().Register(context.Background(), f.inst); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for seen := false; !seen; {
		select {
		case s, ok := <-states:
			if !ok {
				t.Fatal("event stream ended")
			}
			seen = find(s, "user", "user-1") != nil
		case <-deadline:
			t.Fatal("the stream never pushed the new instance")
		}
	}

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<main") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("GET / = %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	// No CDN, no remote font: every file refers to this server only.
	remote := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import`)
	fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := static.ReadFile(path)
		if m := remote.Find(b); m != nil {
			t.Errorf("%s loads a remote resource: %q", path, m)
		}
		return nil
	})
}

// hangingInstance answers /readyz until hang, then holds every request
// without an answer, as a frozen process (SIGSTOP, a deadlock, a VM
// pause) does: the kernel still accepts the connection.
type hangingInstance struct {
	srv     *httptest.Server
	hung    atomic.Bool
	arrived chan struct{} // a request that will get no answer came in
	inst    registry.Instance
}

func startHanging(t *testing.T, service, id string) *hangingInstance {
	t.Helper()
	h := &hangingInstance{arrived: make(chan struct{}, 1)}
	release := make(chan struct{})
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.hung.Load() {
			select {
			case h.arrived <- struct{}{}:
			default:
			}
			select { // until the prober gives up, or the test ends
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, `{"status":"pass","checks":{}}`)
	}))
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for handlers
	h.inst = registry.Instance{ID: id, Name: service, Endpoints: []string{h.srv.URL}}
	return h
}

// A record that leaves discovery is a withdrawal only if the process
// answered after it left; the last probe before may predate a hang whose
// lease ran out while the next probe was still waiting (the tester's
// finding 4: a SIGSTOPped instance shown as withdraw).
func TestView_HowARecordLeftIsSettledByAProbeAfterIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	ready := func(id string) func(Snapshot) bool {
		return func(s Snapshot) bool {
			i := find(s, "user", id)
			return i != nil && i.Readiness != nil && i.Readiness.Ready
		}
	}
	// The probe timeout of the real page: a hung instance's in-flight
	// probe is still waiting when the record goes.
	probeClient := WithHTTPClient(&http.Client{Timeout: 2 * time.Second})

	t.Run("hung with a probe in flight is expire", func(t *testing.T) {
		h := startHanging(t, "user", "user-h1")
		if err := reg.Register(ctx, h.inst); err != nil {
			t.Fatal(err)
		}
		v := runView(t, srv.Registry(), probeClient)
		eventually(t, v, "user-h1 ready", ready("user-h1"))
		h.hung.Store(true)
		select {
		case <-h.arrived:
		case <-time.After(30 * time.Second):
			t.Fatal("no probe reached the hung instance")
		}
		if err := reg.Deregister(ctx, h.inst); err != nil { // its lease ran out
			t.Fatal(err)
		}
		s := eventually(t, v, "user-h1's departure settled", func(s Snapshot) bool {
			return find(s, "user", "user-h1") == nil && (hasEvent(s, KindExpire, "user", "user-h1") || hasEvent(s, KindWithdraw, "user", "user-h1"))
		})
		if hasEvent(s, KindWithdraw, "user", "user-h1") {
			t.Errorf("a hung instance shown as withdrawn: %+v", s.Events)
		}
	})

	t.Run("hung between probes is expire", func(t *testing.T) {
		h := startHanging(t, "user", "user-h2")
		if err := reg.Register(ctx, h.inst); err != nil {
			t.Fatal(err)
		}
		// Probes 1 s apart: the record goes right after a good one, with
		// (most likely) none in flight, so the page must ask once more.
		v := runView(t, srv.Registry(), probeClient, WithProbeEvery(time.Second))
		eventually(t, v, "user-h2 ready", ready("user-h2"))
		h.hung.Store(true)
		if err := reg.Deregister(ctx, h.inst); err != nil {
			t.Fatal(err)
		}
		s := eventually(t, v, "user-h2's departure settled", func(s Snapshot) bool {
			return find(s, "user", "user-h2") == nil && (hasEvent(s, KindExpire, "user", "user-h2") || hasEvent(s, KindWithdraw, "user", "user-h2"))
		})
		if hasEvent(s, KindWithdraw, "user", "user-h2") {
			t.Errorf("a hung instance shown as withdrawn: %+v", s.Events)
		}
	})

	t.Run("a real app stopping gracefully is withdraw", func(t *testing.T) {
		a, err := app.New("user", http.NotFoundHandler(), srv.Registry(), app.WithID("user-g"), app.WithListen("127.0.0.1:0"),
			app.WithGracePeriod(3*time.Second), app.WithSignals(false), app.WithLogger(log.NewNopLogger()))
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		defer func() {
			stop()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Error("the app did not stop")
			}
		}()
		v := runView(t, srv.Registry())
		eventually(t, v, "user-g ready", ready("user-g"))
		stop() // as SIGTERM: withdraw, then answer (503) through the grace period
		s := eventually(t, v, "user-g's departure settled", func(s Snapshot) bool {
			return find(s, "user", "user-g") == nil && (hasEvent(s, KindExpire, "user", "user-g") || hasEvent(s, KindWithdraw, "user", "user-g"))
		})
		if !hasEvent(s, KindWithdraw, "user", "user-g") {
			t.Errorf("a graceful stop not shown as withdraw: %+v", s.Events)
		}
	})
}

// A page's event stream sends at most its rate in bytes a second: after a
// state of n bytes the next change waits n/rate (report j50d: 101 MB in
// 10 s of a fleet's 13 MB states to one page). Here a rate of 10 B/s
// holds the change after the first state (hundreds of bytes) for tens of
// seconds, though the minimum interval is 10 ms.
func TestHandler_StreamIsPacedByItsRate(t *testing.T) {
	srv := memory.NewServer()
	v := runView(t, srv.Registry())
	_, states := serveStream(t, v, WithMinInterval(10*time.Millisecond), WithStreamRate(10))
	f := startInstance(t, "user", "user-1", "zone-a")
	if err := srv.Registry().Register(context.Background(), f.inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, v, "the instance in the view", func(s Snapshot) bool { return find(s, "user", "user-1") != nil })
	select {
	case s := <-states:
		t.Fatalf("a second state (%d services) within 2s at 10 B/s", len(s.Services))
	case <-time.After(2 * time.Second):
	}
}
