package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

type echoReq struct {
	N int `json:"n"`
}

type echoResp struct {
	N         int    `json:"n"`
	From      string `json:"from"`
	RequestID string `json:"request_id"`
}

// Backend behaviours.
const (
	modeOK int32 = iota
	mode503
	mode500
	mode502
	mode404
	mode501 // a method not written yet (a svcgen stub)
	modeOverloaded
	modeTooMany  // one 429 with Retry-After: 1, then OK
	modeProxy503 // a proxy's 503, not a Warren answer: nothing got the request
	modePassedOn // another service's overload answer, passed on by this one
	mode429      // a 429 without Retry-After, every time
)

// backend is a real HTTP server on loopback whose behaviour a test can
// switch while it runs.
type backend struct {
	inst   registry.Instance
	srv    *http.Server
	hits   atomic.Int64
	mode   atomic.Int32
	delay  atomic.Int64
	served chan struct{}
	log    *hitLog
}

// hitLog records, across backends, which backend served each request in
// arrival order.
type hitLog struct {
	mu   sync.Mutex
	hits []string
}

func (l *hitLog) add(id string) {
	if l != nil {
		l.mu.Lock()
		l.hits = append(l.hits, id)
		l.mu.Unlock()
	}
}

func startBackend(t *testing.T, zone string, log *hitLog) *backend {
	t.Helper()
	return serveWith(t, zone, log, func(b *backend) http.Handler { return http.HandlerFunc(b.serve) })
}

// serveWith starts a backend whose server runs handler(b), which may sit
// in front of b.serve.
func serveWith(t *testing.T, zone string, log *hitLog, handler func(b *backend) http.Handler) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	b := &backend{
		inst:   registry.Instance{ID: registry.DefaultID("echo", "127.0.0.1", port), Name: "echo", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}, Zone: zone},
		served: make(chan struct{}),
		log:    log,
	}
	b.srv = &http.Server{Handler: handler(b), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(b.served)
		_ = b.srv.Serve(ln)
	}()
	t.Cleanup(b.kill)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	b.log.add(b.inst.ID)
	if d := time.Duration(b.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch b.mode.Load() {
	case mode503:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"draining","code":"unavailable"}`))
		return
	case mode500:
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"internal error","code":"internal"}`))
		return
	case mode502:
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`<html>bad gateway</html>`))
		return
	case modeOverloaded:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"server overloaded, try another instance","code":"overloaded"}`))
		return
	case modeTooMany:
		b.mode.Store(modeOK)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":"slow down","code":"rate_limited"}`))
		return
	case mode429:
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":"slow down","code":"rate_limited"}`))
		return
	case modeProxy503:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<html>no upstream</html>`))
		return
	case modePassedOn:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"server overloaded, try another instance","code":"overloaded","passed_on":true}`))
		return
	case mode404:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"user 7 not found","code":"user_not_found"}`))
		return
	case mode501:
		w.WriteHeader(http.StatusNotImplemented)
		_, _ = w.Write([]byte(`{"error":"Refund is not implemented yet","code":"not_implemented"}`))
		return
	}
	var in echoReq
	if r.Method != http.MethodGet {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	_ = json.NewEncoder(w).Encode(echoResp{N: in.N, From: b.inst.ID, RequestID: r.Header.Get(requestid.Header)})
}

// kill stops the process abruptly: listener and every connection closed,
// nothing deregistered (a crash).
func (b *backend) kill() {
	_ = b.srv.Close()
	<-b.served
}

// hung is a listener that accepts connections and never answers.
type hung struct {
	inst registry.Instance
	ln   net.Listener
	mu   sync.Mutex
	conn []net.Conn
	done chan struct{}
}

func startHung(t *testing.T) *hung {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	h := &hung{ln: ln, done: make(chan struct{}),
		inst: registry.Instance{ID: registry.DefaultID("echo", "127.0.0.1", port), Name: "echo", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}}
	go func() {
		defer close(h.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conn = append(h.conn, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-h.done
		h.mu.Lock()
		for _, c := range h.conn {
			c.Close()
		}
		h.mu.Unlock()
	})
	return h
}

func newRegistry(t *testing.T, insts ...registry.Instance) *memory.Registry {
	t.Helper()
	reg := memory.New()
	t.Cleanup(func() { reg.Close() })
	for _, in := range insts {
		if err := reg.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func newClient(t *testing.T, d registry.Discovery, opts ...Option) *Client {
	t.Helper()
	c, err := New(context.Background(), d, "echo", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// load runs calls from workers goroutines until n calls are done or d has
// passed, and returns every error and latency.
func load(workers, n int, d time.Duration, call func(i int) error) (errs []error, lat []time.Duration) {
	return loadUntil(context.Background(), workers, n, d, call)
}

// loadUntil is load that also stops when ctx ends.
func loadUntil(ctx context.Context, workers, n int, d time.Duration, call func(i int) error) (errs []error, lat []time.Duration) {
	var mu sync.Mutex
	var next atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				start := time.Now()
				err := call(i)
				el := time.Since(start)
				mu.Lock()
				lat = append(lat, el)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs, lat
}

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max(0, len(s)*99/100-1)]
}

// callDeadline bounds every call a test makes, so a broken mechanism (a
// per-attempt timeout that no longer fires) fails the test instead of
// hanging it; it is far above any healthy call on a loaded machine.
const callDeadline = 10 * time.Second

func get(c *Client) func(int) error {
	return func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
		defer cancel()
		_, err := Call[echoReq, echoResp](ctx, c, "GET", fmt.Sprintf("/echo?i=%d", i), echoReq{})
		return err
	}
}

func TestCall_DecodesResponseAndPropagatesRequestID(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	ctx := requestid.NewContext(context.Background(), "req-42")
	got, err := Call[echoReq, echoResp](ctx, c, "POST", "/echo", echoReq{N: 7})
	if err != nil {
		t.Fatal(err)
	}
	if got.N != 7 || got.From != b.inst.ID || got.RequestID != "req-42" {
		t.Fatalf("got %+v", got)
	}
}

func TestCall_ServerErrorComesBackAsTypedErrorWithoutRetry(t *testing.T) {
	b := startBackend(t, "", nil)
	b.mode.Store(mode404)
	c := newClient(t, newRegistry(t, b.inst))
	_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/users/7", echoReq{})
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if ce.Status != 404 || ce.Code != "user_not_found" || ce.Message != "user 7 not found" || ce.Instance != b.inst.HostPort() {
		t.Fatalf("error = %+v", ce)
	}
	if h := b.hits.Load(); h != 1 {
		t.Fatalf("404 was sent %d times, want once", h)
	}
}

// A service that passes a peer's error on, as it came or wrapped with
// svcerr.Wrap, sends its own caller the peer's message and its own, never
// the peer instance's address that the client's error names in the logs.
func TestCall_PeerErrorPassedOnDoesNotSendThePeersAddress(t *testing.T) {
	b := startBackend(t, "", nil)
	b.mode.Store(mode404)
	c := newClient(t, newRegistry(t, b.inst))
	_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/users/7", echoReq{})
	if err == nil || !strings.Contains(err.Error(), b.inst.HostPort()) {
		t.Fatalf("err = %v; want the instance named for the logs", err)
	}
	for _, tc := range []struct {
		err        error
		status     int
		want, code string
	}{
		{fmt.Errorf("lookup: %w", err), 404, "lookup: user 7 not found", "user_not_found"},
		{svcerr.Wrap(svcerr.Unavailable, "users_down", "user service unavailable", err), 503, "user service unavailable", "users_down"},
	} {
		st, body := httptransport.Classify(tc.err)
		if st != tc.status || body.Error != tc.want || body.Code != tc.code {
			t.Errorf("Classify(%v) = %d %+v; want %d %q %q", tc.err, st, body, tc.status, tc.want, tc.code)
		}
	}
}

// A method the instance has not written (501, svcerr.Unimplemented) is
// an answer: not retried, and not held against the instance, whose other
// methods work — with ejection after 2 failures, 10 such answers leave it in.
func TestCall_UnimplementedIsNotRetriedNorHeldAgainstTheInstance(t *testing.T) {
	stub, a, b := startBackend(t, "", nil), startBackend(t, "", nil), startBackend(t, "", nil)
	stub.mode.Store(mode501)
	c := newClient(t, newRegistry(t, stub.inst, a.inst, b.inst), WithBalancer(balancer.NewRoundRobin()),
		WithOutlier(outlier.WithConsecutiveFailures(2)))
	unimplemented := 0
	for i := range 30 {
		_, err := Call[echoReq, echoResp](context.Background(), c, "POST", "/refund", echoReq{N: i})
		switch {
		case err == nil:
		case svcerr.KindOf(err) == svcerr.Unimplemented && strings.Contains(err.Error(), "Refund is not implemented yet"):
			unimplemented++
		default:
			t.Fatalf("call %d: err = %v (kind %s), want the 501 as svcerr.Unimplemented", i, err, svcerr.KindOf(err))
		}
	}
	if h := stub.hits.Load() + a.hits.Load() + b.hits.Load(); h != 30 {
		t.Fatalf("the instances got %d requests for 30 calls: a 501 was retried", h)
	}
	if int64(unimplemented) != stub.hits.Load() || unimplemented < 5 {
		t.Fatalf("%d calls answered 501, the stub instance got %d of 30 (round robin over 3)", unimplemented, stub.hits.Load())
	}
	if e := c.State().Ejected; e != 0 {
		t.Fatalf("%d instances ejected for answering 501", e)
	}
}

func TestCall_NonJSONErrorBodyKeepsStatus(t *testing.T) {
	b := startBackend(t, "", nil)
	b.mode.Store(mode502)
	c := newClient(t, newRegistry(t, b.inst), WithRetry(retry.WithMaxAttempts(1)))
	_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{})
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != 502 || ce.Code != "" || ce.Message != "Bad Gateway" {
		t.Fatalf("err = %#v", err)
	}
}

func TestCall_NonIdempotentPostIsRetriedOnlyWhenSurelyUnprocessed(t *testing.T) {
	cases := []struct {
		name string
		mode int32
		opts []CallOption
		hits int64
	}{
		{"502 may have been processed", mode502, nil, 1},
		{"502 declared idempotent", mode502, []CallOption{Idempotent()}, 3},
		{"503 from a proxy that had nowhere to send it", modeProxy503, nil, 3},
		{"503 overloaded: the shedder refused it", modeOverloaded, nil, 3},
		// A handler's svcerr.Unavailable may follow its effects.
		{"503 a handler answered", mode503, nil, 1},
		{"503 a handler answered, idempotent", mode503, []CallOption{Idempotent()}, 3},
		// Another service's overload, passed on: this instance acted.
		{"503 overloaded passed on", modePassedOn, nil, 1},
		{"500 is the answer", mode500, []CallOption{Idempotent()}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bs []*backend
			var insts []registry.Instance
			for range 3 {
				b := startBackend(t, "", nil)
				b.mode.Store(tc.mode)
				bs = append(bs, b)
				insts = append(insts, b.inst)
			}
			c := newClient(t, newRegistry(t, insts...), WithoutOutlier(), WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond)))
			_, err := Call[echoReq, echoResp](context.Background(), c, "POST", "/echo", echoReq{N: 1}, tc.opts...)
			if err == nil {
				t.Fatal("want an error")
			}
			var total int64
			for _, b := range bs {
				total += b.hits.Load()
			}
			if total != tc.hits {
				t.Fatalf("%d attempts, want %d (err %v)", total, tc.hits, err)
			}
		})
	}
}

func TestCall_RetryNeverHitsTheSameInstanceTwiceInARow(t *testing.T) {
	log := &hitLog{}
	var insts []registry.Instance
	for range 3 {
		b := startBackend(t, "", log)
		b.mode.Store(mode503)
		insts = append(insts, b.inst)
	}
	for name, bal := range map[string]balancer.Balancer{
		"p2c": balancer.NewP2C(), "random": balancer.NewRandom(), "hash": must(balancer.NewConsistentHash()),
	} {
		log.mu.Lock()
		log.hits = nil
		log.mu.Unlock()
		c := newClient(t, newRegistry(t, insts...), WithBalancer(bal), WithoutOutlier(),
			WithRetry(retry.WithMaxAttempts(3), retry.WithBackoff(time.Microsecond, time.Microsecond), retry.WithBudget(nil)))
		for i := range 20 {
			_, _ = Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{}, HashKey(fmt.Sprint(i)))
		}
		log.mu.Lock()
		hits := slices.Clone(log.hits)
		log.mu.Unlock()
		if len(hits) != 60 {
			t.Fatalf("%s: %d attempts, want 60", name, len(hits))
		}
		for i := 0; i < len(hits); i += 3 {
			if hits[i] == hits[i+1] || hits[i+1] == hits[i+2] {
				t.Fatalf("%s: request %d attempts went to %v", name, i/3, hits[i:i+3])
			}
		}
	}
}

func TestClient_BackendKilledMidLoadCausesNoClientErrors(t *testing.T) {
	var bs []*backend
	var insts []registry.Instance
	for range 3 {
		b := startBackend(t, "", nil)
		bs = append(bs, b)
		insts = append(insts, b.inst)
	}
	c := newClient(t, newRegistry(t, insts...), WithBalancer(balancer.NewRoundRobin()))
	var killed sync.Once
	errs, lat := load(8, 6000, 10*time.Second, func(i int) error {
		if i == 1500 {
			killed.Do(func() { go bs[1].kill() }) // crash: no deregistration
		}
		return get(c)(i)
	})
	for i, err := range errs {
		if i < 5 {
			t.Errorf("client error: %v", err)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d client errors of %d calls", len(errs), len(lat))
	}
	st := c.State()
	t.Logf("%d calls, retries %d, ejected %d, p99 %s", len(lat), st.Retries, st.Ejected, p99(lat))
	if st.Ejected != 1 {
		t.Errorf("killed backend not ejected: %+v", st)
	}
}

func TestClient_RollingRestartCausesNoClientErrors(t *testing.T) {
	var insts []registry.Instance
	var bs []*backend
	for range 3 {
		b := startBackend(t, "", nil)
		bs = append(bs, b)
		insts = append(insts, b.inst)
	}
	reg := newRegistry(t, insts...)
	c := newClient(t, reg)
	ctx, cancel := context.WithCancel(context.Background())
	restarts := make(chan error, 1)
	go func() {
		defer cancel()
		for _, old := range bs {
			// What a lifecycle does: deregister, let clients notice, drain
			// in-flight requests, stop; the replacement comes up elsewhere.
			if err := reg.Deregister(context.Background(), old.inst); err != nil {
				restarts <- err
				return
			}
			// Withdrawal propagates: wait until the client has seen it,
			// not a fixed sleep a loaded machine may outrun; then a grace
			// period for calls that picked the old instance just before,
			// as the lifecycle's --grace does.
			if err := waitInstances(c, 2, 10*time.Second); err != nil {
				restarts <- err
				return
			}
			time.Sleep(250 * time.Millisecond)
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = old.srv.Shutdown(sctx)
			scancel()
			nb := startBackend(t, "", nil)
			if err := reg.Register(context.Background(), nb.inst); err != nil {
				restarts <- err
				return
			}
			if err := waitInstances(c, 3, 10*time.Second); err != nil {
				restarts <- err
				return
			}
		}
		restarts <- nil
	}()
	errs, lat := loadUntil(ctx, 8, 1_000_000, 10*time.Second, func(i int) error {
		_, err := Call[echoReq, echoResp](context.Background(), c, "POST", "/echo", echoReq{N: i})
		return err
	})
	if err := <-restarts; err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d client errors of %d calls, first: %v", len(errs), len(lat), errs[0])
	}
	t.Logf("%d calls through 3 restarts, 0 errors", len(lat))
}

// waitInstances polls until the client picks among n instances, or fails
// after timeout.
func waitInstances(c *Client, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.State().Instances != n {
		if time.Now().After(deadline) {
			return fmt.Errorf("client has %d instances after %s, want %d", c.State().Instances, timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func TestClient_HungBackendIsCutOffByPerAttemptTimeout(t *testing.T) {
	const perAttempt = 100 * time.Millisecond
	h := startHung(t)
	a, b := startBackend(t, "", nil), startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, h.inst, a.inst, b.inst),
		WithBalancer(balancer.NewRoundRobin()), WithRetry(retry.WithPerAttemptTimeout(perAttempt)))
	errs, lat := load(4, 1000, 20*time.Second, get(c))
	if len(errs) > 0 {
		t.Fatalf("%d errors of %d, first: %v", len(errs), len(lat), errs[0])
	}
	h.mu.Lock()
	hungAttempts := len(h.conn) // a hung connection is never reused: one per attempt
	h.mu.Unlock()
	t.Logf("%d calls, p99 %s, max %s, ejected %d, attempts on the hung instance %d", len(lat), p99(lat), slices.Max(lat), c.State().Ejected, hungAttempts)
	// Judged by counts, not latency: every call succeeded within its
	// deadline (the hung attempt was cut off and retried elsewhere), and the
	// hung instance was ejected after a handful of attempts instead of
	// taking its round-robin third of 1000 calls.
	if len(lat) < 100 {
		t.Fatalf("only %d calls in 20s", len(lat))
	}
	if c.State().Ejected < 1 || hungAttempts > 50 {
		t.Fatalf("ejected %d, %d attempts reached the hung instance; want it ejected after a few", c.State().Ejected, hungAttempts)
	}
}

func TestClient_FailingBackendIsEjectedThenReadmittedAfterRecovery(t *testing.T) {
	const cooldown = 300 * time.Millisecond
	bad, a, b := startBackend(t, "", nil), startBackend(t, "", nil), startBackend(t, "", nil)
	bad.mode.Store(mode500)
	logs := &syncbuf.Buffer{}
	c := newClient(t, newRegistry(t, bad.inst, a.inst, b.inst), WithBalancer(balancer.NewRoundRobin()),
		WithOutlier(outlier.WithConsecutiveFailures(3), outlier.WithCooldown(cooldown, cooldown)),
		WithLogger(log.NewLogfmtLogger(logs)))
	call := func() error {
		_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{})
		return err
	}
	badTarget := func() *balancer.Target {
		for _, t := range c.Targets() {
			if t.Instance().ID == bad.inst.ID {
				return t
			}
		}
		return nil
	}
	for i := 0; ; i++ {
		_ = call() // 500s are answers, not retried: the caller sees them until ejection
		if badTarget().Breaker().State() != outlier.Closed {
			break
		}
		if i > 100 {
			t.Fatal("not ejected after 100 calls")
		}
	}
	ejectedAt := time.Now()
	before := bad.hits.Load()
	for range 30 {
		if err := call(); err != nil {
			t.Fatalf("call with bad instance ejected: %v", err)
		}
	}
	if time.Since(ejectedAt) < cooldown && bad.hits.Load() != before {
		t.Fatalf("ejected backend got %d requests during its cooldown", bad.hits.Load()-before)
	}

	bad.mode.Store(modeOK)
	deadline := time.Now().Add(5 * time.Second)
	for badTarget().Breaker().State() != outlier.Closed || bad.hits.Load() < before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("not readmitted: state %s, hits %d", badTarget().Breaker().State(), bad.hits.Load()-before)
		}
		if err := call(); err != nil {
			t.Fatalf("call during readmission: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if e := c.State().Ejected; e != 0 {
		t.Fatalf("%d still ejected", e)
	}
	// The log keeps what the metrics lose when the instance leaves.
	for _, want := range []string{
		`level=warn msg="instance ejected: outlier detection took it out of rotation after failures in a row" service=echo instance=` + bad.inst.ID,
		`level=info msg="ejected instance answered its probe; back in rotation" service=echo instance=` + bad.inst.ID,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestClient_RetryBudgetCapsRetriesDuringAnOutage(t *testing.T) {
	const requests, ratio, burst = 300, 0.2, 5
	var bs []*backend
	var insts []registry.Instance
	for range 3 {
		b := startBackend(t, "", nil)
		b.mode.Store(mode503)
		bs = append(bs, b)
		insts = append(insts, b.inst)
	}
	c := newClient(t, newRegistry(t, insts...), WithoutOutlier(),
		WithRetry(retry.WithMaxAttempts(3), retry.WithBackoff(time.Microsecond, time.Microsecond), retry.WithBudget(retry.NewBudget(ratio, burst))))
	errs, _ := load(4, requests, 20*time.Second, get(c))
	var attempts int64
	for _, b := range bs {
		attempts += b.hits.Load()
	}
	retries := attempts - requests
	limit := int64(requests*ratio) + burst
	t.Logf("%d requests, %d attempts, %d retries (limit %d; without a budget %d)", requests, attempts, retries, limit, 2*requests)
	if len(errs) != requests {
		t.Fatalf("%d errors, want every request to fail", len(errs))
	}
	if retries > limit || retries < limit-3 {
		t.Fatalf("%d retries, want ≤ %d and close to it", retries, limit)
	}
	// A request the budget let retry fully spent two tokens and fails with
	// its three attempts' errors; every other one was cut short by the
	// budget and must say so. Which kind finishes last is up to the
	// scheduler, so count them.
	exhausted := 0
	for _, err := range errs {
		if errors.Is(err, retry.ErrBudgetExhausted) {
			exhausted++
		}
	}
	if want := requests - int(retries)/2; exhausted < want {
		t.Errorf("%d errors say the budget ran out, want ≥ %d; e.g. %v", exhausted, want, errs[len(errs)-1])
	}
}

func TestClient_ConsistentHashSendsAKeyToOneBackend(t *testing.T) {
	var insts []registry.Instance
	for range 4 {
		insts = append(insts, startBackend(t, "", nil).inst)
	}
	c := newClient(t, newRegistry(t, insts...), WithBalancer(must(balancer.NewConsistentHash())))
	for k := range 20 {
		var first string
		for range 5 {
			got, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{}, HashKey(fmt.Sprint("cart-", k)))
			if err != nil {
				t.Fatal(err)
			}
			if first == "" {
				first = got.From
			} else if got.From != first {
				t.Fatalf("key %d served by %s and %s", k, first, got.From)
			}
		}
	}
}

func TestClient_ZoneAwareKeepsAllTrafficLocalWhileLocalIsHealthy(t *testing.T) {
	var local, remote []*backend
	var insts []registry.Instance
	for _, z := range []string{"a", "a", "b", "b", "b"} {
		b := startBackend(t, z, nil)
		insts = append(insts, b.inst)
		if z == "a" {
			local = append(local, b)
		} else {
			remote = append(remote, b)
		}
	}
	c := newClient(t, newRegistry(t, insts...), WithBalancer(must(balancer.NewZoneAware("a"))))
	errs, lat := load(4, 400, 10*time.Second, get(c))
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	for _, b := range remote {
		if h := b.hits.Load(); h != 0 {
			t.Fatalf("remote backend got %d of %d requests", h, len(lat))
		}
	}
	for _, b := range local {
		if b.hits.Load() == 0 {
			t.Fatal("a local backend got nothing")
		}
	}
}

func TestClient_P2CSendsLessTrafficToASlowInstanceThanRoundRobin(t *testing.T) {
	share := func(bal balancer.Balancer) float64 {
		slow, a, b := startBackend(t, "", nil), startBackend(t, "", nil), startBackend(t, "", nil)
		// 50 ms, far above what a loaded machine's stalls add to the
		// fast instances, so the difference P2C sees is the delay's.
		slow.delay.Store(int64(50 * time.Millisecond))
		c := newClient(t, newRegistry(t, slow.inst, a.inst, b.inst), WithBalancer(bal))
		errs, lat := load(8, 600, 20*time.Second, get(c))
		if len(errs) > 0 {
			t.Fatal(errs[0])
		}
		return float64(slow.hits.Load()) / float64(len(lat))
	}
	rr, p2c := share(balancer.NewRoundRobin()), share(balancer.NewP2C())
	t.Logf("slow instance's share: round robin %.1f%%, P2C %.1f%%", 100*rr, 100*p2c)
	if p2c > rr/2 {
		t.Fatalf("P2C sent %.1f%% to the slow instance, round robin %.1f%%: want less than half", 100*p2c, 100*rr)
	}
}

// down is a registry that cannot be reached.
type down struct{}

func (down) Instancer(context.Context, string) (sd.Instancer, error) {
	return nil, errors.New("dial tcp 127.0.0.1:8500: connect: connection refused")
}

func TestClient_FirstCallSucceedsFromSnapshotWhenRegistryIsDownAtStart(t *testing.T) {
	dir := t.TempDir()
	b := startBackend(t, "", nil)
	{
		// A previous run, registry up: it leaves a snapshot behind.
		c := newClient(t, newRegistry(t, b.inst), WithSnapshot(dir))
		if _, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for c.State().Snapshot.SnapshotWritten.IsZero() {
			if time.Now().After(deadline) {
				t.Fatal("snapshot not written")
			}
			time.Sleep(time.Millisecond)
		}
		c.Close()
	}
	c := newClient(t, down{}, WithSnapshot(dir))
	got, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{})
	if err != nil || got.From != b.inst.ID {
		t.Fatalf("first call with registry down: %+v, %v", got, err)
	}
	if st := c.State().Snapshot; st == nil || !st.Stale {
		t.Fatalf("snapshot state %+v, want stale", st)
	}
}

func TestClient_CloseIsIdempotentAndLaterCallsFail(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	if _, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{}); err == nil {
		t.Fatal("call after Close succeeded")
	}
}

func TestClient_WorksOverAFixedInstancer(t *testing.T) {
	b := startBackend(t, "", nil)
	c := must(NewFromInstancer(sd.FixedInstancer{b.inst.HostPort()}, "echo"))
	defer c.Close()
	ep := Endpoint[echoReq, echoResp](c, "POST", "/echo")
	got, err := ep(context.Background(), echoReq{N: 3})
	if err != nil || got.(echoResp).N != 3 {
		t.Fatalf("go-kit endpoint over FixedInstancer: %v, %v", got, err)
	}
}

// TestClassify_ServerClosedIdleIsUnprocessed: net/http's "server closed
// idle connection" — the server closed the connection while no request
// was on it — is retried for every method, however it is wrapped; the
// same words in a server's answer are not that error. The text is
// net/http's (its error is unexported), so the test also checks that
// net/http still says it.
func TestClassify_ServerClosedIdleIsUnprocessed(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src", "net", "http", "transport.go"))
	if err != nil {
		t.Fatalf("net/http's source, to check the error's text: %v", err)
	}
	if !strings.Contains(string(src), `errServerClosedIdle = errors.New("`+errServerClosedIdleText+`")`) {
		t.Fatalf("net/http no longer declares errServerClosedIdle as %q; update errServerClosedIdleText", errServerClosedIdleText)
	}
	closed := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/echo", Err: errors.New(errServerClosedIdleText)}
	for name, err := range map[string]error{
		"as net/http returns it": closed,
		"wrapped":                fmt.Errorf("attempt 1 on echo-1: %w", closed),
		"joined":                 errors.Join(errors.New("other"), closed),
	} {
		if got := classify(err); got != retry.Unprocessed {
			t.Errorf("%s: class %v, want unprocessed", name, got)
		}
	}
	answer := &Error{Status: 500, Code: "internal", Message: "upstream: " + errServerClosedIdleText}
	if got := classify(answer); got == retry.Unprocessed {
		t.Errorf("a 500 whose message quotes the error is unprocessed")
	}
}

// A path an HTTP server would not route as written ("." or ".." segments,
// an empty one inside it) is refused before anything is sent, as an
// invalid argument, instead of reaching another route (or a redirect).
func TestCall_UnroutablePathIsRefusedBeforeSending(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	for _, path := range []string{"/items/.", "/items/..", "/items//refund", "/items/../admin?x=1", "items/apple", ""} {
		_, err := Call[echoReq, echoResp](context.Background(), c, "PUT", path, echoReq{})
		if !errors.Is(err, ErrUnroutablePath) || svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Errorf("%s: err = %v, want ErrUnroutablePath (invalid_argument)", path, err)
		}
	}
	// An empty method (net/http would send GET) or one that is no HTTP
	// token is refused the same way.
	for _, method := range []string{"", "G ET", "GET\n"} {
		_, err := Call[echoReq, echoResp](context.Background(), c, method, "/items/a", echoReq{})
		if !errors.Is(err, ErrBadMethod) || svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Errorf("method %q: err = %v, want ErrBadMethod (invalid_argument)", method, err)
		}
	}
	if h := b.hits.Load(); h != 0 {
		t.Fatalf("%d unroutable calls reached the instance", h)
	}
	for _, path := range []string{"/items/a.b", "/.well-known/x", "/items/", "/items/x?next=/a//b/.."} {
		if _, err := Call[echoReq, echoResp](context.Background(), c, "PUT", path, echoReq{}); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// A call cut by its deadline — the caller's context's or the call's own
// Timeout — says which service it was calling and is still a deadline
// error (net/http's message names only an address).
func TestInvoke_ACallCutByItsDeadlineNamesTheServiceAndStaysADeadlineError(t *testing.T) {
	b := startBackend(t, "", nil)
	b.delay.Store(int64(5 * time.Second))
	c := newClient(t, newRegistry(t, b.inst))
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		byCtx := c.Invoke(ctx, method, "/echo", map[string]int{"a": 1}, nil)
		cancel()
		byOption := c.Invoke(context.Background(), method, "/echo", map[string]int{"a": 1}, nil, Timeout(200*time.Millisecond))
		for _, err := range []error{byCtx, byOption} {
			if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(fmt.Sprint(err), "client echo: ") {
				t.Errorf("%s cut by its deadline: %v; want a deadline error starting \"client echo: \"", method, err)
			}
		}
	}
}

// A client with TLS calls only instances that publish https: a
// plaintext instance is skipped (ErrPlaintextPeer, logged by the
// endpointer), so it cannot downgrade the mesh to cleartext;
// WithPlaintextPeers lets it in again.
func TestClient_WithTLSSkipsPlaintextInstances(t *testing.T) {
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`"tls"`)) }))
	defer secure.Close()
	plain := startBackend(t, "", nil)
	tlsInst := registry.Instance{ID: "tls-1", Name: "echo", Endpoints: []string{secure.URL}}
	tc := secure.Client().Transport.(*http.Transport).TLSClientConfig
	for _, c := range []struct {
		name      string
		opts      []Option
		wantPlain bool
	}{
		{"TLS only", []Option{WithTLS(tc)}, false},
		{"plaintext peers allowed", []Option{WithTLS(tc), WithPlaintextPeers(), WithBalancer(balancer.NewRoundRobin())}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			cl := newClient(t, newRegistry(t, tlsInst, plain.inst), append(c.opts, WithLogger(log.NewLogfmtLogger(logs)))...)
			before := plain.hits.Load()
			for range 20 {
				if err := cl.Invoke(context.Background(), http.MethodGet, "/echo", nil, nil); err != nil {
					t.Fatalf("call: %v", err)
				}
			}
			if gotPlain := plain.hits.Load() > before; gotPlain != c.wantPlain {
				t.Fatalf("the plaintext instance served calls: %v, want %v", gotPlain, c.wantPlain)
			}
			if !c.wantPlain && !strings.Contains(logs.String(), "publishes no TLS endpoint") {
				t.Fatalf("the skipped instance is not logged with why:\n%s", logs)
			}
		})
	}
}

// One instance whose certificate callers cannot verify (renewed late,
// issued by another CA) costs a POST nothing: the handshake sent no
// request, so the attempt goes to another instance.
func TestClient_AnInstanceWithABadCertificateIsPassedOverForAnyCall(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	serve := func(p tlstest.Pair, id string) registry.Instance {
		cfg, err := tlsconf.Server(p.CertFile, p.KeyFile, "")
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`"` + id + `"`))
		}))
		s.TLS = cfg
		s.StartTLS()
		t.Cleanup(s.Close)
		return registry.Instance{ID: id, Name: "echo", Endpoints: []string{s.URL}}
	}
	good, bad := serve(ca.Issue("good"), "good"), serve(other.Issue("bad"), "bad")
	cfg, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, newRegistry(t, good, bad), WithTLS(cfg), WithoutOutlier(), WithBalancer(balancer.NewRoundRobin()))
	for i := range 10 {
		var id string
		if err := c.Invoke(context.Background(), http.MethodPost, "/echo", map[string]int{"n": i}, &id); err != nil || id != "good" {
			t.Fatalf("POST %d: %q, %v; want every call answered by the instance with a good certificate", i, id, err)
		}
	}
}

// A call that finds no instance because discovery is failing says why,
// with the registry's error, and still matches ErrNoEndpoints (report
// j47a: a service account the apiserver refused read as a bare "no
// endpoints available" on every call). An empty set discovery answered
// without error stays the bare error.
func TestClient_NoInstanceSaysWhyDiscoveryIsEmpty(t *testing.T) {
	in := stoppable{registry.NewCache()}
	c, err := NewFromInstancer(in, "echo", WithRetry(retry.WithMaxAttempts(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	in.Update(sd.Event{Err: errors.New(`pods is forbidden: User "system:serviceaccount:shop:mesh" cannot list resource "pods"`)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{})
	if !errors.Is(err, balancer.ErrNoEndpoints) || !strings.Contains(err.Error(), "discovery is failing: pods is forbidden") {
		t.Fatalf("Call = %v; want ErrNoEndpoints with discovery's error", err)
	}
	in.Update(sd.Event{Instances: []string{}})
	for c.ep.DiscoveryErr() != nil { // the endpointer takes the event on its own goroutine
		if ctx.Err() != nil {
			t.Fatal("the endpointer still reports discovery failing after an answer")
		}
		time.Sleep(time.Millisecond)
	}
	_, err = Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{})
	if !errors.Is(err, balancer.ErrNoEndpoints) || strings.Contains(err.Error(), "discovery is failing") {
		t.Fatalf("Call = %v once discovery answered an empty set; want the bare ErrNoEndpoints", err)
	}
}

// stoppable is a registry.Cache as an sd.Instancer: the test feeds it.
type stoppable struct{ *registry.Cache }

func (stoppable) Stop() {}

// started is an Observer that hears ClientStarted.
type started struct {
	NopObserver
	services []string
}

func (s *started) ClientStarted(service string) { s.services = append(s.services, service) }

// A ServiceObserver hears each client's service once, when it is built.
func TestClient_TellsAServiceObserverWhenBuilt(t *testing.T) {
	obs := &started{}
	c, err := NewFromInstancer(stoppable{registry.NewCache()}, "echo", WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(obs.services) != 1 || obs.services[0] != "echo" {
		t.Fatalf("ClientStarted calls %q, want [echo]", obs.services)
	}
}
