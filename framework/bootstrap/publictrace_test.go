package bootstrap

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// followed is what the service's HTTP handler and gRPC interceptor saw
// of the caller's trace context, by transport.
type followed struct {
	mu   sync.Mutex
	seen map[string][2]string // transport: trace ID, baggage
}

func (f *followed) note(transport string, ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[transport] = [2]string{trace.SpanContextFromContext(ctx).TraceID().String(), baggage.FromContext(ctx).String()}
}

func (f *followed) get(transport string) ([2]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.seen[transport]
	return s, ok
}

// docs/observability.md, "Callers outside the mesh": --trace-public-endpoint (or
// WARREN_TRACE_PUBLIC_ENDPOINT, or the --config key) reaches both servers a service built on
// bootstrap runs: neither its HTTP handler nor its gRPC service sees the
// caller's trace ID or baggage. Without it both follow the caller.
func TestRun_TracePublicEndpointReachesHTTPAndGRPC(t *testing.T) {
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, c := range []struct {
		name   string
		flags  []string
		env    string
		file   string // --config's
		public bool
	}{
		{"default", nil, "", "", false},
		{"flag", []string{"--trace-public-endpoint"}, "", "", true},
		{"variable", nil, "true", "", true},
		{"config key", nil, "", "trace-public-endpoint: true\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("WARREN_TRACE_PUBLIC_ENDPOINT", c.env)
			}
			flags := c.flags
			if c.file != "" {
				path := filepath.Join(t.TempDir(), "svc.yaml")
				if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
				flags = append(flags, "--config", path)
			}
			f := &followed{seen: map[string][2]string{}}
			var deps *Deps
			build := func(ctx context.Context, d *Deps) (Transports, error) {
				deps = d
				opts, err := grpcserver.Settings{Listen: "127.0.0.1:0"}.Options(d.Config, d.Shedder)
				if err != nil {
					return Transports{}, err
				}
				note := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
					f.note("grpc", ctx)
					return h(ctx, req)
				}
				opts = append(append(opts, d.GRPCServerOptions()...), grpcserver.WithUnaryInterceptors(note))
				gs, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, "svc-1") }, opts...)
				if err != nil {
					return Transports{}, err
				}
				ts := HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.note("http", r.Context()) }))
				ts.Servers = []transport.Server{gs}
				return ts, nil
			}
			port := freePort(t)
			// --trace-stdout: a real provider, which makes spans.
			args := append([]string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s", "--trace-stdout"}, flags...)
			start(t, args, build)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:"+port+"/x", nil)
			req.Header.Set("traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
			req.Header.Set("baggage", "tenant=evil")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			// The gRPC call as a client in the caller's trace makes it:
			// its attempt's traceparent carries the caller's trace ID.
			tid, _ := trace.TraceIDFromHex(callerTrace)
			sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
			cctx := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
			m, _ := baggage.NewMember("tenant", "evil")
			bag, _ := baggage.New(m)
			if _, err := sayClient(t, ctx, deps)(baggage.ContextWithBaggage(cctx, bag), "hi"); err != nil {
				t.Fatal(err)
			}

			for _, tr := range []string{"http", "grpc"} {
				s, ok := f.get(tr)
				if !ok {
					t.Fatalf("%s: the service saw no request", tr)
				}
				followed := s[0] == callerTrace && s[1] == "tenant=evil"
				ownTrace := s[0] != callerTrace && s[0] != (trace.TraceID{}).String() && s[1] == ""
				if c.public && !ownTrace || !c.public && !followed {
					t.Errorf("%s: the service saw trace %s, baggage %q; want the caller's followed: %v", tr, s[0], s[1], !c.public)
				}
			}
		})
	}
}
