package tracing

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// collector is a real OTLP/gRPC trace receiver on loopback that refuses
// exports while broken is set (PermissionDenied, which the exporter does
// not retry): a collector that goes away and comes back.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	broken atomic.Bool
}

func (c *collector) Export(context.Context, *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if c.broken.Load() {
		return nil, status.Error(grpccodes.PermissionDenied, "collector gone")
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, c)
	go func() { _ = gs.Serve(ln) }() // ends with Stop at cleanup
	t.Cleanup(gs.Stop)
	return c, "http://" + ln.Addr().String()
}

// The failures a throttled line leaves uncounted belong to their outage:
// once exports work again (and ExportErrorEvery has passed since the last
// line) they are logged, not held for the next outage, whose first line
// counted them as its own; the ones pending at shutdown are logged then,
// not lost.
func TestNewProvider_ExportFailuresAreCountedInTheirOwnOutage(t *testing.T) {
	w, endpoint := startCollector(t)
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint), otlptracegrpc.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	le := logErrors(exp, "otlp", log.NewLogfmtLogger(logs)).(*loggedExporter)
	now := time.Unix(1000, 0)
	le.now = func() time.Time { return now }                  // the test moves the clock
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(le)) // one export per span, in End
	span := func() {
		_, s := tp.Tracer("t").Start(context.Background(), "op")
		s.End()
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(logs.String()), "\n") }

	w.broken.Store(true)
	span()
	span()
	span() // outage 1: a line, then two failures counted
	w.broken.Store(false)
	span() // back, inside the line's ExportErrorEvery: held
	now = now.Add(ExportErrorEvery + time.Second)
	span() // back, past it: the two are logged now
	if l := lines(); len(l) != 2 || !strings.Contains(l[1], "failures=2") || !strings.Contains(l[1], "spans=2") {
		t.Fatalf("log after outage 1 ended: %q; want its first failure, then a line for the 2 after it", l)
	}
	w.broken.Store(true)
	span() // outage 2, inside the last line's ExportErrorEvery: pending at shutdown
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if l := lines(); len(l) != 3 || !strings.Contains(l[2], "failures=1") || !strings.Contains(l[2], "spans=1") || !strings.Contains(l[2], "collector gone") {
		t.Fatalf("log after shutdown: %q; want the failure pending at shutdown logged", l)
	}
}
