package tracing

import (
	"bytes"
	"context"
	"errors"
	stdlog "log"
	"os"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("collector gone") }

// With Config.Logger, an exporter's failure is a level=warn line in the
// service's log (JSON here), at most one per ExportErrorEvery, and nothing
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
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"warn"`) || !strings.Contains(lines[0], `"msg":"trace export failed; spans dropped"`) ||
		!strings.Contains(lines[0], "collector gone") || !strings.Contains(lines[0], `"exporter":"stdout"`) {
		t.Errorf("service log: %q; want one JSON warn line naming the failure", lines)
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
