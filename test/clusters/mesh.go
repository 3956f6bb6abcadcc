// Package clusters proves that Warren's discovery survives what happens to
// clustered registries in production: the etcd leader or a follower
// crashing, a member cut off by the network, the whole cluster restarting,
// a member replaced by a new one, a Consul server leader or a client agent
// lost, and a datacenter left with no passing instance.
//
// Each scenario runs a real cluster (etcd members as processes of the test
// binary, internal/etcdcluster; Consul servers and client agents from
// bin/consul, internal/consulcluster), real HTTP backends registered
// through Warren registries that know every registry address, and a Warren
// client calling them at 200 req/s through discovery. This file and
// phase.go are shared with `make bench` (the leader-kill rows).
package clusters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/test/faults"
)

// Service is the name every backend registers under.
const Service = "echo"

// Env says how a backend process and the client reach the registry.
type Env struct {
	// Open returns the Registry of backend number i: each backend has its
	// own, as each service process would.
	Open func(ctx context.Context, i int) (registry.Registry, error)
	// Discovery is the calling process's registry.
	Discovery registry.Registry
}

// Backend is one HTTP instance of Service with its own Registry.
type Backend struct {
	ID   string
	Reg  registry.Registry
	srv  *http.Server
	inst registry.Instance

	hits     atomic.Int64
	firstHit atomic.Int64 // unix nanoseconds of the first call served
}

// StartBackend serves GET /echo on a free loopback port and registers it
// as ID. The Register is bounded by ctx.
func (e *Env) StartBackend(ctx context.Context, i int, id string) (*Backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Backend{ID: id}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.hits.Add(1) == 1 {
			b.firstHit.Store(time.Now().UnixNano())
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"id": id})
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }() // owned by the Backend: ends at Close
	addr := ln.Addr().(*net.TCPAddr)
	b.inst = registry.Instance{ID: id, Name: Service,
		Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", addr.Port)}}
	if b.Reg, err = e.Open(ctx, i); err != nil {
		b.srv.Close()
		return nil, err
	}
	if err := b.Reg.Register(ctx, b.inst); err != nil {
		b.Close()
		return nil, fmt.Errorf("register %s: %w", id, err)
	}
	return b, nil
}

// FirstHit is when the backend served its first call (zero if never).
func (b *Backend) FirstHit() time.Time {
	if n := b.firstHit.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Deregister withdraws the backend; it keeps serving until Close, so a
// client that has not seen the withdrawal yet still gets an answer.
func (b *Backend) Deregister(ctx context.Context) error {
	return b.Reg.Deregister(ctx, b.inst)
}

// Reregistrations is how often the backend's registry had to write its
// record again (lease or agent registration lost).
func (b *Backend) Reregistrations() int {
	if s, ok := b.Reg.(registry.StatusReporter); ok {
		return s.Status().Reregistrations
	}
	return 0
}

// Status is the backend's registry status in a line ("" if it keeps none).
func (b *Backend) Status() string {
	s, ok := b.Reg.(registry.StatusReporter)
	if !ok {
		return ""
	}
	st := s.Status()
	return fmt.Sprintf("%s since %s (last error %q, %d re-registrations)", st.State, st.Since.Format("15:04:05.000"), st.LastError, st.Reregistrations)
}

// Close stops serving and closes the registry (withdrawing it). Idempotent
// through the parts' own idempotence.
func (b *Backend) Close() {
	_ = b.Reg.Close()
	_ = b.srv.Close()
}

// Watcher records every event of one instancer: the sets, duplicates and
// errors a client saw.
type Watcher struct {
	in   sd.Instancer
	ch   chan sd.Event
	done chan struct{}

	mu     sync.Mutex
	events []Seen
}

// Seen is one event as the watcher saw it.
type Seen struct {
	At  time.Time
	IDs []string // sorted, duplicates kept
	Err error
}

// Duplicates counts IDs or addresses that appear twice in the event.
func (s Seen) Duplicates() int {
	return len(s.IDs) - len(slices.Compact(slices.Clone(s.IDs)))
}

// Watch subscribes to in until Stop.
func Watch(in sd.Instancer) *Watcher {
	w := &Watcher{in: in, ch: make(chan sd.Event), done: make(chan struct{})}
	go w.loop()       // owned by the Watcher: ends at Stop
	in.Register(w.ch) // sends the current set at once: the loop must already read
	return w
}

func (w *Watcher) loop() {
	for {
		select {
		case ev := <-w.ch:
			var ids []string
			seenAddr := map[string]bool{}
			for _, s := range ev.Instances {
				inst, err := registry.ParseInstance(s)
				if err != nil {
					ids = append(ids, "unparsable:"+s)
					continue
				}
				ids = append(ids, inst.ID)
				if seenAddr[inst.HostPort()] { // one address twice is a duplicate too
					ids = append(ids, inst.ID)
				}
				seenAddr[inst.HostPort()] = true
			}
			slices.Sort(ids)
			w.mu.Lock()
			w.events = append(w.events, Seen{At: time.Now(), IDs: ids, Err: ev.Err})
			w.mu.Unlock()
		case <-w.done:
			return
		}
	}
}

// Stop unsubscribes. Idempotent.
func (w *Watcher) Stop() {
	select {
	case <-w.done:
		return
	default:
	}
	// Deregister while the loop still reads, as sd.Instancer requires.
	w.in.Deregister(w.ch)
	close(w.done)
}

// Since returns the events seen at or after t.
func (w *Watcher) Since(t time.Time) []Seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := len(w.events)
	for i > 0 && !w.events[i-1].At.Before(t) {
		i--
	}
	return slices.Clone(w.events[i:])
}

// Last is the latest event, or a zero Seen.
func (w *Watcher) Last() Seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.events) == 0 {
		return Seen{}
	}
	return w.events[len(w.events)-1]
}

// WaitFor waits until the latest event has exactly ids and no error.
func (w *Watcher) WaitFor(ctx context.Context, ids ...string) error {
	want := slices.Clone(ids)
	slices.Sort(want)
	for {
		last := w.Last()
		if last.Err == nil && slices.Equal(last.IDs, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instancer never showed exactly %v: last %v (err %v): %w", want, last.IDs, last.Err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// NewClient is the calling side: a Warren client over in. Its attempts
// may take 15 s (of the load's 20 s per call): the backends answer at
// once, so an attempt that times out measures a starved machine, not
// discovery, which is what these tests judge: a wrong set shows as
// refused connections or no endpoints. Etcd members replaying their logs
// beside the test, under -race, at load 30 made 1 s attempts time out and
// the retry budget run dry; on a fresh machine (3 Dec 2026) with 5 s
// attempts, the four calls in flight at one moment of the restart-all
// phase, on three different live backends, all timed out together after
// 5 s — the whole process had not run — and more retries were due at
// once than the budget's burst holds.
//
// For the same reason the client has no concurrency limit: the load is
// open-loop (Rate calls per second whatever the answers), so a starved
// machine piles up calls in flight — three fresh-clone runs at once, each
// with a 3-member cluster, put > 500 in flight and the default limit
// refused ~100–370 calls per phase — which says nothing of discovery.
// The limit is tested in framework/climit and the overload mesh tests.
func NewClient(in sd.Instancer) (*client.Client, error) {
	return client.NewFromInstancer(in, Service, client.WithRetry(retry.WithPerAttemptTimeout(15*time.Second)), client.WithoutConcurrencyLimit())
}

// load is every test's load: Rate calls per second, each bounded by 20 s.
func load(d time.Duration) faults.Load {
	return faults.Load{Rate: Rate, Duration: d, Timeout: 20 * time.Second}
}

// Call is one GET /echo through c.
func Call(c *client.Client) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var out map[string]string
		if err := c.Invoke(ctx, http.MethodGet, "/echo", nil, &out); err != nil {
			return err
		}
		if out["id"] == "" {
			return errors.New("answer without id")
		}
		return nil
	}
}
