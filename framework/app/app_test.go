package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// journal is one ordered record of phases (from the log) and registry
// calls, so tests can assert what happened before what.
type journal struct {
	mu      sync.Mutex
	entries []string
	errs    map[string]string // phase → the err its line logged
	levels  map[string]string // phase → the level its line logged at
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// phaseLevel is the level the last line of phase logged at.
func (j *journal) phaseLevel(phase string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.levels[phase]
}

// phaseErr is the err the last line of phase logged.
func (j *journal) phaseErr(phase string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.errs[phase]
}

// Log implements log.Logger: it records "phase:<name>" for phase lines,
// and their err.
func (j *journal) Log(kv ...any) error {
	var phase, errText, lvl string
	for i := 0; i+1 < len(kv); i += 2 {
		switch fmt.Sprint(kv[i]) {
		case "level":
			lvl = fmt.Sprint(kv[i+1])
		case "phase":
			phase = fmt.Sprint(kv[i+1])
		case "err":
			errText = fmt.Sprint(kv[i+1])
		}
	}
	if phase != "" {
		j.add("phase:" + phase)
		j.mu.Lock()
		if j.errs == nil {
			j.errs, j.levels = map[string]string{}, map[string]string{}
		}
		j.errs[phase], j.levels[phase] = errText, lvl
		j.mu.Unlock()
	}
	return nil
}

// recorder is a memory registry that writes its calls into the journal.
type recorder struct {
	*memory.Registry
	j *journal
}

func (r recorder) Register(ctx context.Context, i registry.Instance) error {
	r.j.add("registry:register")
	return r.Registry.Register(ctx, i)
}

func (r recorder) Deregister(ctx context.Context, i registry.Instance) error {
	r.j.add("registry:deregister")
	return r.Registry.Deregister(ctx, i)
}

func (r recorder) Close() error {
	r.j.add("registry:close")
	return r.Registry.Close()
}

func indexOf(list []string, s string) int { return slices.Index(list, s) }

func testOptions(j *journal, extra ...Option) []Option {
	return append([]Option{
		WithListen("127.0.0.1:0"),
		WithLogger(j),
		WithGracePeriod(0),
		WithSignals(false),
		WithSelfCheckTimeout(2 * time.Second),
	}, extra...)
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
}

// start runs a in the background and waits until it is ready.
func start(t *testing.T, a *App, ctx context.Context) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s")
	}
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s")
		return nil
	}
}

func TestRun_PhasesInOrderRegisterAfterSelfCheckReleaseLast(t *testing.T) {
	j := &journal{}
	reg := recorder{memory.New(), j}
	a, err := New("orders", okHandler(), reg, testOptions(j)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	if got := reg.Instances("orders"); len(got) != 1 || got[0].HostPort() != a.Instance().HostPort() {
		t.Fatalf("registered %+v", got)
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after a clean shutdown", err)
	}
	want := []string{"phase:listen", "phase:serve", "phase:selfcheck", "registry:register", "phase:register", "phase:run",
		"registry:deregister", "phase:withdraw", "phase:grace", "phase:drain", "registry:close", "phase:release", "phase:exit"}
	if got := j.list(); !slices.Equal(got, want) {
		t.Fatalf("journal\n got %v\nwant %v", got, want)
	}
}

func TestShutdown_InFlightCompletesReadyz503DuringGraceNewRequestsRefused(t *testing.T) {
	j := &journal{}
	reg := memory.New()
	entered := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	a, err := New("slowsvc", mux, reg, testOptions(j, WithGracePeriod(600*time.Millisecond), WithDrainTimeout(10*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	base := a.Instance().Endpoints[0]
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

	if st := status(t, fresh, base+"/readyz"); st != 200 {
		t.Fatalf("readyz before shutdown = %d", st)
	}
	type result struct {
		code int
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := fresh.Get(base + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-entered
	cancel() // like SIGTERM

	// Grace: withdrawn and 503 on readiness, but still serving.
	deadline := time.Now().Add(2 * time.Second)
	for status(t, fresh, base+"/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("readyz never turned 503")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(reg.Instances("slowsvc")); n != 0 {
		t.Fatalf("still %d instance(s) in discovery during grace", n)
	}
	if st := status(t, fresh, base+"/fast"); st != 200 {
		t.Fatalf("request during grace = %d, want 200", st)
	}

	// Drain: the listener closes, so new connections are refused while the
	// in-flight request is still running.
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, err := fresh.Get(base + "/fast")
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new requests still accepted during drain (last err %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	r := <-slow
	if r.err != nil || r.code != 200 || r.body != "done" {
		t.Fatalf("in-flight request = %+v, want 200 done", r)
	}
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func status(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestRun_WrongAdvertisedAddressFailsNamingItAndNeverRegisters(t *testing.T) {
	// A port that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	// A port answered by another process's /healthz.
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	otherSrv := &http.Server{Handler: okHandler(), ReadHeaderTimeout: time.Second}
	go otherSrv.Serve(other)
	defer otherSrv.Close()

	for name, tc := range map[string]struct{ adv, want string }{
		"refused":       {dead, "connection refused"},
		"other process": {other.Addr().String(), "another process"},
	} {
		t.Run(name, func(t *testing.T) {
			j := &journal{}
			reg := recorder{memory.New(), j}
			// 2s: the first probe's answer must come back within it on a
			// loaded machine; the error then names that answer, even when
			// the deadline cuts a later probe short.
			a, err := New("svc", okHandler(), reg, testOptions(j, WithAdvertise(tc.adv), WithSelfCheckTimeout(2*time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			// The deadline only keeps a self-check that wrongly passes
			// (and then serves until cancelled) from hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = a.Run(ctx)
			if !errors.Is(err, ErrSelfCheck) || !strings.Contains(err.Error(), tc.adv) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v; want ErrSelfCheck naming %s and %q", err, tc.adv, tc.want)
			}
			if indexOf(j.list(), "registry:register") >= 0 {
				t.Fatalf("registered despite failed self-check: %v", j.list())
			}
		})
	}
}

// When the deadline cuts the last probe short, the error still names the
// answer the probes got before it, not "context deadline exceeded".
func TestRun_SelfCheckErrorNamesTheLastAnswerNotTheDeadline(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	otherSrv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			io.WriteString(w, `{"ok":true}`) // another process's answer
			return
		}
		select { // then it hangs until the probe gives up
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})}
	go otherSrv.Serve(other)
	defer otherSrv.Close()
	j := &journal{}
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithAdvertise(other.Addr().String()), WithSelfCheckTimeout(3*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if !errors.Is(err, ErrSelfCheck) || !strings.Contains(err.Error(), "another process") || calls.Load() < 2 {
		t.Fatalf("Run = %v after %d probes; want ErrSelfCheck naming \"another process\"", err, calls.Load())
	}
}

func TestRun_SelfCheckOffSkipsIt(t *testing.T) {
	j := &journal{}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithAdvertise(dead), WithSelfCheck(false))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestRun_AdvertisedPortFollowsRealPort(t *testing.T) {
	j := &journal{}
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithAdvertise("127.0.0.1"))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	inst := a.Instance()
	_, _, port, err := registry.ParseEndpoint(inst.Endpoints[0])
	if err != nil || inst.ID != registry.DefaultID("svc", "127.0.0.1", port) {
		t.Fatalf("instance %+v", inst)
	}
	cancel()
	wait(t, done)
}

func TestRun_SIGTERMShutsDownCleanlyAndSecondSignalForces(t *testing.T) {
	t.Run("one signal", func(t *testing.T) {
		j := &journal{}
		a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithSignals(true))...)
		if err != nil {
			t.Fatal(err)
		}
		done := start(t, a, context.Background())
		syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		if err := wait(t, done); err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("second signal", func(t *testing.T) {
		j := &journal{}
		entered := make(chan struct{})
		block := make(chan struct{})
		defer close(block)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { close(entered); <-block })
		a, err := New("svc", h, memory.New(), testOptions(j, WithSignals(true), WithGracePeriod(30*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		done := start(t, a, context.Background())
		go http.Get(a.Instance().Endpoints[0] + "/hang")
		<-entered
		syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		// Wait until the first signal is being handled (withdraw logged).
		deadline := time.Now().Add(5 * time.Second)
		for indexOf(j.list(), "phase:grace") < 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		// A signal within repeatWindow of the first would be taken as
		// the same one, delivered twice.
		time.Sleep(repeatWindow + 100*time.Millisecond)
		start := time.Now()
		syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		err = wait(t, done)
		if !errors.Is(err, ErrForced) {
			t.Fatalf("Run = %v, want ErrForced", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("forced exit took %s", took)
		}
		// The drain was cut by the signal, not by its timeout.
		if e := j.phaseErr("drain"); !strings.Contains(e, ErrForced.Error()) || strings.Contains(e, "timeout") {
			t.Fatalf("drain logged err %q, want it to name the forced exit", e)
		}
	})
}

func TestRun_ReadyzShowsPerCheckDetail(t *testing.T) {
	j := &journal{}
	var dbDown atomic.Bool
	a, err := New("svc", okHandler(), memory.New(), testOptions(j,
		WithReadinessCheck("db", func(context.Context) error {
			if dbDown.Load() {
				return errors.New("db unreachable")
			}
			return nil
		}),
		WithWatchdog(time.Hour, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	body := readyz(t, a)
	for _, name := range []string{"registered", "draining", "db"} {
		if !body.Checks[name].OK {
			t.Fatalf("check %s not ok: %+v", name, body)
		}
	}
	dbDown.Store(true)
	// The service's own checks are served from a cache of ReadinessCacheAge.
	deadline := time.Now().Add(10 * time.Second)
	for body = readyz(t, a); body.Checks["db"].OK && time.Now().Before(deadline); body = readyz(t, a) {
		time.Sleep(50 * time.Millisecond)
	}
	if body.Status != "fail" || body.Checks["db"].OK || body.Checks["db"].Detail != "db unreachable" {
		t.Fatalf("readyz %+v", body)
	}
}

// A probe that must not follow the registry asks /readyz?exclude=registered
// (an external load balancer, or a kubelet, in front of a service
// registered in etcd, Consul or ZooKeeper): the App's checks go by the
// names the docs give.
func TestRun_ReadyzExcludesTheRegistrationByName(t *testing.T) {
	a, err := New("svc", okHandler(), memory.New(), testOptions(&journal{})...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	base := a.Instance().Endpoints[0]
	for url, want := range map[string]int{
		base + "/readyz?exclude=registered":                  200,
		base + "/readyz?exclude=registered&exclude=draining": 200,
		base + "/readyz?exclude=db":                          400,
	} {
		if st := status(t, http.DefaultClient, url); st != want {
			t.Errorf("%s: %d, want %d", url, st, want)
		}
	}
}

type readyBody struct {
	Status string `json:"status"`
	Checks map[string]struct {
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

func readyz(t *testing.T, a *App) readyBody {
	t.Helper()
	resp, err := http.Get(a.Instance().Endpoints[0] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b readyBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWatchdog_WithdrawsAfterNFailuresAndRestores(t *testing.T) {
	j := &journal{}
	reg := memory.New()
	var down atomic.Bool
	a, err := New("svc", okHandler(), reg, testOptions(j,
		WithReadinessCheck("dep", func(context.Context) error {
			if down.Load() {
				return errors.New("dependency dead")
			}
			return nil
		}),
		WithWatchdog(20*time.Millisecond, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()

	waitFor(t, "registered", func() bool { return len(reg.Instances("svc")) == 1 })
	down.Store(true)
	waitFor(t, "withdrawn", func() bool { return len(reg.Instances("svc")) == 0 })
	if b := readyz(t, a); b.Checks["registered"].OK {
		t.Fatalf("readyz says registered while withdrawn: %+v", b)
	}
	down.Store(false)
	waitFor(t, "restored", func() bool { return len(reg.Instances("svc")) == 1 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNew_RejectsBadInput(t *testing.T) {
	reg := memory.New()
	for name, tc := range map[string]struct {
		svc string
		h   http.Handler
		reg registry.Registry
		opt []Option
	}{
		"bad name":   {"Bad Name", okHandler(), reg, nil},
		"nil h":      {"svc", nil, reg, nil},
		"nil reg":    {"svc", okHandler(), nil, nil},
		"neg weight": {"svc", okHandler(), reg, []Option{WithWeight(-1)}},
	} {
		if _, err := New(tc.svc, tc.h, tc.reg, tc.opt...); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestRun_TwiceIsAnError(t *testing.T) {
	j := &journal{}
	a, _ := New("svc", okHandler(), memory.New(), testOptions(j)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	if err := a.Run(ctx); !errors.Is(err, ErrAlreadyRun) {
		t.Fatalf("second Run = %v", err)
	}
	cancel()
	wait(t, done)
}

func TestRun_RegistrationConflictFailsStartup(t *testing.T) {
	srv := memory.NewServer()
	j := &journal{}
	// Another live process (another client of the registry) holds the ID
	// at a different address.
	a, _ := New("svc", okHandler(), srv.Registry(), testOptions(j, WithID("fixed"))...)
	other := registry.Instance{ID: "fixed", Name: "svc", Endpoints: []string{"http://127.0.0.2:1"}}
	if err := srv.Registry().Register(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.Run(ctx)
	if !errors.Is(err, ErrRegister) || !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("Run = %v", err)
	}
	// The failed phase writes its line too (docs/lifecycle.md: every
	// phase does), before the release that undoes the start-up.
	got := j.list()
	if r, rel := indexOf(got, "phase:register"), indexOf(got, "phase:release"); r < 0 || rel < r {
		t.Fatalf("phases %v; want a register line before release", got)
	}
}

var _ log.Logger = (*journal)(nil)

func TestRun_DebugListenerIsPublishedAsMetricsMetadata(t *testing.T) {
	j := &journal{}
	reg := memory.New()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "warren_up 1\n") })
	a, err := New("svc", okHandler(), reg, testOptions(j, WithDebugListener("127.0.0.1:0", metrics), WithMetadata(map[string]string{"team": "x"}))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	got := reg.Instances("svc")
	if len(got) != 1 || got[0].Metadata["team"] != "x" {
		t.Fatalf("registered %+v", got)
	}
	url := got[0].Metadata[MetricsMetadataKey]
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("metrics metadata %q", url)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
}

func TestDebugHostPort_UsesAdvertisedHostForWildcardBinds(t *testing.T) {
	if got := debugHostPort(&net.TCPAddr{IP: net.IPv4zero, Port: 9090}, "10.0.0.7"); got != "10.0.0.7:9090" {
		t.Fatalf("wildcard: %s", got)
	}
	if got := debugHostPort(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9090}, "10.0.0.7"); got != "127.0.0.1:9090" {
		t.Fatalf("specific: %s", got)
	}
}

// A certificate callers cannot accept for the advertised address (no IP
// SAN for it) fails the self-check at once, saying it is the certificate,
// and does not send the operator to turn the self-check off: that would
// register an instance no caller can reach.
func TestRun_CertificateCallersCannotVerifyFailsTheSelfCheckSayingSo(t *testing.T) {
	ca := tlstest.NewCA(t)
	pair := ca.IssueFor("svc", "svc.internal") // a DNS name only
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	j := &journal{}
	reg := recorder{memory.New(), j}
	a, err := New("svc", okHandler(), reg, testOptions(j,
		WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}}),
		WithSelfCheckTLS(&tls.Config{RootCAs: roots}), // as callers verify
		WithSelfCheckTimeout(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	// Well inside the self-check's minute: the error must not wait it out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if !errors.Is(err, ErrSelfCheck) || !strings.Contains(err.Error(), "IP SAN") || strings.Contains(err.Error(), "turn the self-check off") {
		t.Fatalf("Run = %v; want ErrSelfCheck naming the certificate, without the advice to turn the self-check off", err)
	}
	if indexOf(j.list(), "registry:register") >= 0 {
		t.Fatal("registered an instance callers cannot verify")
	}
}

// failingDeregister is a memory registry whose Deregister fails, as a
// registry does that could not withdraw the instance or confirm it.
type failingDeregister struct{ *memory.Registry }

func (failingDeregister) Deregister(context.Context, registry.Instance) error {
	return errors.New("deregister: servers unreachable")
}

// A withdrawal that failed leaves the instance listed: its phase line is
// a warning, so alerting on warn sees it; a clean one stays info.
func TestShutdown_FailedWithdrawIsLoggedAsAWarning(t *testing.T) {
	for _, c := range []struct {
		name string
		reg  registry.Registry
		want string
	}{
		{"failed", failingDeregister{memory.New()}, "level=warn svc=orders phase=withdraw"},
		{"clean", memory.New(), "level=info svc=orders phase=withdraw"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out syncbuf.Buffer
			startStop(t, "orders", c.reg, WithLogger(log.NewLogfmtLogger(&out)))
			if !strings.Contains(out.String(), c.want) {
				t.Fatalf("log lacks %q:\n%s", c.want, out.String())
			}
		})
	}
}

// deadlineDeregister is a memory registry that notes how far ahead the
// deadline of Deregister's context was when it was called.
type deadlineDeregister struct {
	*memory.Registry
	ahead chan time.Duration
}

func (r deadlineDeregister) Deregister(ctx context.Context, i registry.Instance) error {
	ahead := time.Duration(-1) // no deadline
	if dl, ok := ctx.Deadline(); ok {
		ahead = time.Until(dl)
	}
	r.ahead <- ahead
	return r.Registry.Deregister(ctx, i)
}

// WithWithdrawTimeout is the bound phase 6 hands the registry: a registry
// reached over a slow link needs more than the default 5 s.
func TestShutdown_WithdrawTimeoutBoundsTheDeregistration(t *testing.T) {
	for _, c := range []struct {
		name     string
		opts     []Option
		min, max time.Duration
	}{
		{"default", nil, 0, DefaultWithdrawTimeout},
		{"WithWithdrawTimeout", []Option{WithWithdrawTimeout(30 * time.Second)}, DefaultWithdrawTimeout, 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := deadlineDeregister{memory.New(), make(chan time.Duration, 1)}
			startStop(t, "orders", reg, c.opts...)
			ahead := <-reg.ahead
			// 25 s of slack for a machine that stalls between setting the
			// deadline and the call.
			if ahead <= c.min || ahead > c.max {
				t.Fatalf("Deregister's deadline was %s ahead, want within (%s, %s]", ahead, c.min, c.max)
			}
		})
	}
	if _, err := New("orders", okHandler(), memory.New(), WithWithdrawTimeout(0)); err == nil || !strings.Contains(err.Error(), "WithWithdrawTimeout") {
		t.Fatalf("New with a zero withdraw timeout = %v, want an error naming the option", err)
	}
}

// startStop runs an App of reg until it is ready, then cancels it and
// waits for Run to return.
func startStop(t *testing.T, name string, reg registry.Registry, opts ...Option) {
	t.Helper()
	a, err := New(name, okHandler(), reg, testOptions(&journal{}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	wait(t, done)
}
