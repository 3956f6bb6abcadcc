package tracing

import (
	"bytes"
	"context"
	"errors"
	stdlog "log"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("collector gone") }

// With Config.Logger, an exporter's failure is a level=warn line in the
// service's log (JSON here), at most one per ExportErrorEvery (the ones
// still pending at shutdown logged then), and nothing
// reaches OpenTelemetry's default handler (the standard library's log).
// Without it, the failure goes where it went before.
func TestNewProvider_ExportFailuresGoToTheServiceLogger(t *testing.T) {
	var std bytes.Buffer
	stdlog.SetOutput(&std) // where OTel's default error handler prints
	defer stdlog.SetOutput(os.Stderr)

	logs := &syncbuf.Buffer{}
	tp, shutdown, err := NewProvider(context.Background(), Config{Service: "user", Stdout: brokenWriter{}, Logger: log.NewJSONLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, span := tp.Tracer("t").Start(context.Background(), "op")
		span.End() // the stdout exporter is synchronous: it fails here
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"level":"warn"`) || !strings.Contains(lines[0], `"msg":"trace export failed; spans dropped"`) ||
		!strings.Contains(lines[0], "collector gone") || !strings.Contains(lines[0], `"exporter":"stdout"`) ||
		!strings.Contains(lines[1], `"failures":2`) {
		t.Errorf("service log: %q; want one JSON warn line naming the failure, and one at shutdown counting the 2 after it", lines)
	}
	if std.Len() != 0 {
		t.Errorf("OpenTelemetry's handler printed: %s", std.String())
	}

	// No logger: as before, OpenTelemetry's handler gets it.
	tp, shutdown, err = NewProvider(context.Background(), Config{Service: "user", Stdout: brokenWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("t").Start(context.Background(), "op")
	span.End()
	_ = shutdown(context.Background())
	if !strings.Contains(std.String(), "collector gone") {
		t.Errorf("without a logger the failure went nowhere: %q", std.String())
	}
}

// A collector that refuses keeps the OTLP exporter retrying past the
// shutdown's deadline: the error says the spans were dropped and where
// they were going, not only "context deadline exceeded".
func TestNewProvider_ShutdownNamesACollectorThatDidNotTakeTheSpans(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refuses from now on
	tp, shutdown, err := NewProvider(context.Background(), Config{Service: "user", OTLPEndpoint: "http://" + addr, Logger: log.NewNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("t").Start(context.Background(), "op")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "spans dropped on exit: the collector at http://"+addr) {
		t.Fatalf("shutdown: %v; want the dropped spans and the collector named", err)
	}

	// The error is logged at exit: a secret in the endpoint a library
	// caller gave (config refuses one) is masked, the collector still named.
	tp, shutdown, err = NewProvider(context.Background(), Config{Service: "user", OTLPEndpoint: "http://u:secret1@" + addr + "/?token=secret2", Logger: log.NewNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, span = tp.Tracer("t").Start(context.Background(), "op")
	span.End()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = shutdown(ctx)
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "the collector at http://xxxxx@"+addr+"/?xxxxx") {
		t.Fatalf("shutdown: %v; want the collector named with its secrets masked", err)
	}
}
