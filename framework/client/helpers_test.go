package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/requestid"
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
