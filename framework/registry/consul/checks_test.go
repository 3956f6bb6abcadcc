package consul

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

func TestParseCheckKinds(t *testing.T) {
	cases := []struct {
		in      string
		want    []CheckKind
		wantErr string
	}{
		{in: "ttl", want: []CheckKind{CheckTTL}},
		{in: "http", want: []CheckKind{CheckHTTP}},
		{in: "ttl,tcp", want: []CheckKind{CheckTTL, CheckTCP}},
		{in: " GRPC , http ,", want: []CheckKind{CheckGRPC, CheckHTTP}},
		{in: "script", wantErr: "enable_script_checks"},
		{in: "ttl,ttl", wantErr: "twice"},
		{in: "udp", wantErr: "unknown kind"},
		{in: "", wantErr: "empty"},
	}
	for _, c := range cases {
		got, err := ParseCheckKinds(c.in)
		if c.wantErr != "" {
			if !errors.Is(err, ErrInvalidCheck) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseCheckKinds(%q) = %v, %v; want an ErrInvalidCheck saying %q", c.in, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseCheckKinds(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestNew_RefusesUnusableChecks(t *testing.T) {
	cases := map[string][]Check{
		"none":                  {},
		"two of a kind":         {{Kind: CheckTCP}, {Kind: CheckTCP}},
		"timeout > interval":    {{Kind: CheckHTTP, Interval: time.Second, Timeout: 2 * time.Second}},
		"path without slash":    {{Kind: CheckHTTP, Path: "healthz"}},
		"unknown kind":          {{Kind: CheckKind(42)}},
		"TTL below a heartbeat": {{Kind: CheckTTL, TTL: time.Millisecond}},
		// A negative value is a mistake, not "the default" (0 is).
		"negative TTL":      {{Kind: CheckTTL, TTL: -time.Second}},
		"negative interval": {{Kind: CheckHTTP, Interval: -time.Second}},
	}
	for name, checks := range cases {
		if _, err := New(context.Background(), WithChecks(checks...)); !errors.Is(err, ErrInvalidCheck) {
			t.Errorf("%s: New = %v; want ErrInvalidCheck", name, err)
		}
	}
	r, err := New(context.Background(), WithTTLCheck(0))
	if err != nil {
		t.Fatalf("WithTTLCheck(0) (the default TTL): %v", err)
	}
	r.Close()
}

// An agent address the client would take and then fail to reach on every
// request, naming no address, is refused by New.
func TestNew_RefusesAMalformedAgentAddress(t *testing.T) {
	for _, addr := range []string{"http://bad addr", "http://[::bad", "127.0.0.1", "ftp://127.0.0.1:8500", "127.0.0.1:0"} {
		if _, err := New(context.Background(), WithAddress(addr)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("agent address %q", addr)) {
			t.Errorf("New(WithAddress(%q)) = %v; want an error naming the address", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8500", "http://127.0.0.1:8500", "https://consul.example:8501/", "unix:///run/consul.sock"} {
		r, err := New(context.Background(), WithAddress(addr))
		if err != nil {
			t.Errorf("New(WithAddress(%q)) = %v; want it accepted", addr, err)
			continue
		}
		r.Close()
	}
}

// TestRegistry_EachAgentCheckKindFollowsTheInstance registers an instance
// with one agent-run check of each kind, stops the server behind it and
// starts it again on the same port: the check turns critical and passing
// again, and the instancer's passing set follows. (TTL checks: see
// TestRegistry_FrozenProcessLeavesPassingSetWithinTTL; gRPC checks:
// TestRegistry_GRPCCheckFollowsTheHealthServer.)
func TestRegistry_EachAgentCheckKindFollowsTheInstance(t *testing.T) {
	a := needAgent(t)
	for _, kind := range []CheckKind{CheckHTTP, CheckTCP} {
		t.Run(kind.String(), func(t *testing.T) {
			srv := startCheckedServer(t, kind)
			r := newRegistry(t, a.Addr(), WithChecks(Check{Kind: kind, Interval: time.Second, Timeout: time.Second}))
			inst := srv.instance("kind-"+kind.String()+"-1", "kind-"+kind.String())
			rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
			if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
				t.Fatal(err)
			}
			id := checkID(inst.ID, kind)
			rec.WaitFor(t, 10*time.Second, "passing", registrytest.Has(inst.ID))
			waitCheck(t, r, inst.Name, id, api.HealthPassing)

			srv.down()
			rec.WaitFor(t, 10*time.Second, "critical once the server stopped", registrytest.Lacks(inst.ID))
			waitCheck(t, r, inst.Name, id, api.HealthCritical)
			srv.up()
			rec.WaitFor(t, 10*time.Second, "passing once it is back", registrytest.Has(inst.ID))
			waitCheck(t, r, inst.Name, id, api.HealthPassing)
		})
	}
}

// TestRegister_GRPCCheckNeedsAGRPCEndpoint: an instance without a gRPC
// endpoint cannot carry a gRPC check; Register says so before calling the
// agent.
func TestRegister_GRPCCheckNeedsAGRPCEndpoint(t *testing.T) {
	counter := &countingTransport{}
	r := newRegistry(t, "127.0.0.1:1", WithChecks(Check{Kind: CheckGRPC}),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { counter.next = next; return counter }))
	inst := registry.Instance{ID: "no-grpc-1", Name: "no-grpc", Endpoints: []string{"http://127.0.0.1:8080"}}
	err := r.Register(ctxT(t, 5*time.Second), inst)
	if !errors.Is(err, registry.ErrInvalidInstance) || !strings.Contains(err.Error(), "grpcs endpoint") {
		t.Fatalf("Register = %v; want ErrInvalidInstance naming the missing grpc endpoint", err)
	}
	if n := counter.n.Load(); n != 0 {
		t.Fatalf("%d agent requests for an instance that cannot be registered", n)
	}
}

// TestRegistry_SeveralChecksPerInstance registers a TTL and a TCP check:
// both are on the agent, and either one failing takes the instance out of
// the passing set.
func TestRegistry_SeveralChecksPerInstance(t *testing.T) {
	a := needAgent(t)
	srv := startCheckedServer(t, CheckTCP)
	r := newRegistry(t, a.Addr(), WithChecks(
		Check{Kind: CheckTTL, TTL: testTTL},
		Check{Kind: CheckTCP, Interval: time.Second, Timeout: time.Second},
	), WithDeregisterCriticalAfter(90*time.Second))
	inst := srv.instance("multi-1", "multi-svc")
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 10*time.Second, "passing", registrytest.Has(inst.ID))
	checks, _, err := r.Client().Health().Checks(inst.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range checks {
		got = append(got, c.CheckID+"="+c.Type)
	}
	slices.Sort(got)
	if want := []string{"service:multi-1:tcp=tcp", "service:multi-1=ttl"}; !slices.Equal(got, want) {
		t.Fatalf("checks on the agent = %v, want %v", got, want)
	}
	srv.down() // TTL still heartbeating; TCP fails
	rec.WaitFor(t, 10*time.Second, "out while TCP fails", registrytest.Lacks(inst.ID))
	srv.up()
	rec.WaitFor(t, 10*time.Second, "back when TCP passes", registrytest.Has(inst.ID))
	r.paused.Store(true) // TCP passing; TTL expires
	rec.WaitFor(t, testTTL+5*time.Second, "out while the TTL expires", registrytest.Lacks(inst.ID))
	r.paused.Store(false)
	rec.WaitFor(t, 10*time.Second, "back with heartbeats", registrytest.Has(inst.ID))
}

func waitCheck(t *testing.T, r *Registry, service, id, status string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		checks, _, err := r.Client().Health().Checks(service, nil)
		if err == nil {
			for _, c := range checks {
				if c.CheckID == id {
					if c.Status == status {
						return
					}
					last = c.Status + ": " + c.Output
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("check %s is not %s after 10s (last: %s)", id, status, last)
}

// checkedServer is what a check probes: a TCP acceptor, an HTTP /healthz
// or a gRPC server with grpc.health.v1, on one loopback port that down
// closes and up listens on again (the instance stops answering, then
// recovers).
type checkedServer struct {
	t      *testing.T
	kind   CheckKind
	addr   string
	tls    *tls.Config // nil: plain
	health *health.Server

	mu   sync.Mutex
	stop func()
}

func startCheckedServer(t *testing.T, kind CheckKind) *checkedServer {
	t.Helper()
	return startTLSCheckedServer(t, kind, nil)
}

// startTLSCheckedServer serves over TLS with conf (HTTPS, gRPC over TLS).
func startTLSCheckedServer(t *testing.T, kind CheckKind, conf *tls.Config) *checkedServer {
	t.Helper()
	s := &checkedServer{t: t, kind: kind, tls: conf, health: health.NewServer()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.down)
	return s
}

func (s *checkedServer) serve(l net.Listener) {
	var stop func()
	switch s.kind {
	case CheckHTTP:
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path != "/healthz" {
				http.NotFound(w, req)
			}
		}), ErrorLog: log.New(io.Discard, "", 0)} // failed handshakes are the point of some tests
		if s.tls != nil {
			l = tls.NewListener(l, s.tls)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(l) }()
		stop = func() { srv.Close(); <-done }
	case CheckGRPC:
		var opts []grpc.ServerOption
		if s.tls != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
		}
		srv := grpc.NewServer(opts...)
		healthpb.RegisterHealthServer(srv, s.health)
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(l) }()
		stop = func() { srv.Stop(); <-done }
	default:
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		stop = func() { l.Close(); <-done }
	}
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
}

// down stops answering: the port refuses connections. Idempotent.
func (s *checkedServer) down() {
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// up serves again on the same port.
func (s *checkedServer) up() {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp", s.addr)
		if err == nil {
			s.serve(l)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("listen again on %s: %v", s.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// instance is the registry.Instance the server stands for.
func (s *checkedServer) instance(id, name string) registry.Instance {
	host, port, _ := net.SplitHostPort(s.addr)
	scheme := "http"
	if s.kind == CheckGRPC {
		scheme = "grpc"
	}
	if s.tls != nil {
		scheme += "s"
	}
	return testInstance(id, name, scheme, host, port)
}

// testInstance is an instance serving scheme on host:port.
func testInstance(id, name, scheme, host, port string) registry.Instance {
	p, _ := strconv.Atoi(port)
	return registry.Instance{ID: id, Name: name, Endpoints: []string{registry.EndpointURL(scheme, host, p)}}
}
