package grpcserver_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// running is a Server serving outside an App, as the App would run it.
type running struct {
	*grpcserver.Server
	ep   string
	echo *grpctest.Echo
	done chan error
}

func serve(t *testing.T, nonce string, opts ...grpcserver.Option) *running {
	t.Helper()
	return serveHost(t, transport.Host{Service: "echo", Nonce: nonce, Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)}, opts...)
}

// serveHost is serve with the Host (health sets) an App would give.
func serveHost(t *testing.T, host transport.Host, opts ...grpcserver.Option) *running {
	t.Helper()
	nonce := host.Nonce
	r := &running{done: make(chan error, 1)}
	s, err := grpcserver.New(func(g *grpc.Server) { r.echo = grpctest.Register(g, nonce) },
		append([]grpcserver.Option{grpcserver.WithAddr("127.0.0.1:0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.Server = s
	addr, err := s.Listen(host)
	if err != nil {
		t.Fatal(err)
	}
	r.ep = s.Scheme() + "://" + addr.String()
	go func() { r.done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Serve = %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return within 20s of Close")
		}
	})
	return r
}

func probe(s *grpcserver.Server, ep string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.Probe(ctx, ep)
}

// The self-check passes only when this very server answers: another
// server's endpoint (another process's nonce) fails it, and so does an
// address where nothing listens.
func TestProbe_NonceProvesWhoAnswered(t *testing.T) {
	a, b := serve(t, "nonce-a"), serve(t, "nonce-b")
	if err := probe(a.Server, a.ep); err != nil {
		t.Fatalf("own endpoint: %v", err)
	}
	err := probe(a.Server, b.ep)
	if err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("probe of another server = %v, want 'answered by another process'", err)
	}
	b.Close()
	if err := probe(a.Server, b.ep); err == nil {
		t.Fatal("probe of a closed server passed")
	}
	if err := probe(a.Server, "http://"+strings.TrimPrefix(a.ep, "grpc://")); err == nil {
		t.Fatal("probe of an http:// endpoint passed")
	}
}

// Shutdown lets a call in flight finish (GracefulStop) and refuses new
// connections; a call longer than the drain is cut (Stop) and reported
// with ErrDrainTimeout.
func TestShutdown_DrainsInFlightThenCuts(t *testing.T) {
	t.Run("finishes", func(t *testing.T) {
		s := serve(t, "n")
		cc := dial(t, s.ep)
		res := make(chan error, 1)
		go func() { _, err := grpctest.Say(context.Background(), cc, "sleep:500ms"); res <- err }()
		waitInFlight(t, s.Server, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		if err := <-res; err != nil {
			t.Fatalf("in-flight call = %v, want it to finish", err)
		}
		if _, err := grpctest.Say(context.Background(), dial(t, s.ep), "x"); status.Code(err) != codes.Unavailable {
			t.Fatalf("call after Shutdown = %v, want UNAVAILABLE", err)
		}
	})
	t.Run("cut", func(t *testing.T) {
		s := serve(t, "n")
		cc := dial(t, s.ep)
		res := make(chan error, 1)
		go func() { _, err := grpctest.Say(context.Background(), cc, "sleep:5m"); res <- err }()
		waitInFlight(t, s.Server, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := s.Shutdown(ctx)
		if !errors.Is(err, transport.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 gRPC call") {
			t.Fatalf("Shutdown = %v, want ErrDrainTimeout naming 1 call", err)
		}
		select {
		case err := <-res:
			if err == nil {
				t.Fatal("cut call succeeded")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("cut call did not return within 20s")
		}
		if err := s.Close(); err != nil { // after Shutdown, and twice: idempotent
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func waitInFlight(t *testing.T, s *grpcserver.Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.InFlight() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in flight after 20s, want %d", s.InFlight(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Business errors cross as status codes with Warren's ErrorInfo, so the
// caller rebuilds an error errors.Is matches against the service's
// sentinel; a panic is INTERNAL without its text.
func TestErrors_KindsBecomeStatusCodes(t *testing.T) {
	s := serve(t, "n")
	cc := dial(t, s.ep)
	_, err := grpctest.Say(context.Background(), cc, "fail:not_found:user_not_found")
	st := status.Convert(err)
	if st.Code() != codes.NotFound {
		t.Fatalf("code %s, want NotFound", st.Code())
	}
	if got := grpctransport.FromStatus(st); !errors.Is(got, svcerr.New(svcerr.NotFound, "user_not_found", "")) {
		t.Fatalf("rebuilt %#v, want NotFound/user_not_found", got)
	}
	_, err = grpctest.Say(context.Background(), cc, "panic")
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "asked to panic") {
		t.Fatalf("panic answered %v, want INTERNAL without the panic's text", st)
	}
	if got, err := grpctest.Say(context.Background(), cc, "still here"); err != nil || got != "still here" {
		t.Fatalf("after a panic: %q, %v", got, err)
	}
}

// An overloaded server refuses at once with RESOURCE_EXHAUSTED, reason
// "overloaded" and a RetryInfo; health is never shed.
func TestShedding_RefusesWithResourceExhausted(t *testing.T) {
	l, err := shed.New(shed.WithLimits(1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, "n", grpcserver.WithShedding(l))
	cc := dial(t, s.ep)
	go func() { _, _ = grpctest.Say(context.Background(), cc, "sleep:3s") }() // holds the one slot
	waitInFlight(t, s.Server, 1)
	_, err = grpctest.Say(context.Background(), cc, "x")
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !grpctransport.Overloaded(st) || grpctransport.RetryAfter(st) < time.Second {
		t.Fatalf("over the limit: %v (details %v), want RESOURCE_EXHAUSTED overloaded with RetryInfo ≥ 1s", st, st.Details())
	}
	if !errors.Is(grpctransport.FromStatus(st), svcerr.ErrOverloaded) {
		t.Fatal("overload does not rebuild as svcerr.ErrOverloaded")
	}
	if got := check(t, healthpb.NewHealthClient(cc), ""); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health while shedding = %s", got)
	}
}

// grpcs: TLS with client certificates required. The self-check passes
// with the server's own certificate; a caller without one is refused in
// the handshake; one with a certificate from the CA is served.
func TestTLS_MutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	srvPair, cliPair := ca.Issue("server"), ca.Issue("client")
	scfg, err := tlsconf.Server(srvPair.CertFile, srvPair.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, "n", grpcserver.WithTLS(scfg))
	if s.Scheme() != "grpcs" || !strings.HasPrefix(s.ep, "grpcs://") {
		t.Fatalf("scheme %s, endpoint %s; want grpcs", s.Scheme(), s.ep)
	}
	if err := probe(s.Server, s.ep); err != nil {
		t.Fatalf("self-check over mTLS: %v", err)
	}
	call := func(cfg *tls.Config) error {
		cc, err := grpc.NewClient(strings.TrimPrefix(s.ep, "grpcs://"), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = grpctest.Say(ctx, cc, "x")
		return err
	}
	noCert, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := call(noCert); err == nil {
		t.Fatal("a caller without a client certificate was served")
	}
	withCert, err := tlsconf.Client(ca.CertFile, cliPair.CertFile, cliPair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(withCert); err != nil {
		t.Fatalf("a caller with a certificate: %v", err)
	}
}

// Close before Serve and twice is fine; Serve after Close returns nil.
func TestClose_IdempotentAndBeforeServe(t *testing.T) {
	s, err := grpcserver.New(func(*grpc.Server) {}, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listen(transport.Host{Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Serve(); err != nil {
		t.Fatalf("Serve after Close = %v", err)
	}
}

func TestNew_RejectsBadInput(t *testing.T) {
	for name, f := range map[string]func() (*grpcserver.Server, error){
		"nil register": func() (*grpcserver.Server, error) { return grpcserver.New(nil) },
		"nil option":   func() (*grpcserver.Server, error) { return grpcserver.New(func(*grpc.Server) {}, nil) },
		"empty addr": func() (*grpcserver.Server, error) {
			return grpcserver.New(func(*grpc.Server) {}, grpcserver.WithAddr(""))
		},
		"nil tls": func() (*grpcserver.Server, error) {
			return grpcserver.New(func(*grpc.Server) {}, grpcserver.WithTLS(nil))
		},
		"zero watch": func() (*grpcserver.Server, error) {
			return grpcserver.New(func(*grpc.Server) {}, grpcserver.WithWatchInterval(0))
		},
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// A call whose metadata passes 64 KiB is refused before the handler, as
// the HTTP server refuses headers past 64 KiB with 431; a call under it
// is served (report j49b: 16 MiB per call was taken).
func TestMetadata_LargerThan64KiBIsRefused(t *testing.T) {
	s := serve(t, "n")
	cc := dial(t, s.ep)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	small := metadata.AppendToOutgoingContext(ctx, "x-pad", strings.Repeat("a", 8<<10))
	if got, err := grpctest.Say(small, cc, "hi"); err != nil || got != "hi" {
		t.Fatalf("8 KiB of metadata: %q, %v", got, err)
	}
	big := metadata.AppendToOutgoingContext(ctx, "x-pad", strings.Repeat("a", 200<<10))
	if _, err := grpctest.Say(big, cc, "hi"); err == nil {
		t.Fatal("200 KiB of metadata was served")
	}
	if n := s.echo.Calls.Load(); n != 1 {
		t.Fatalf("the handler ran %d times, want once (the big call refused before it)", n)
	}
}
