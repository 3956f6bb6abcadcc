package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// observability.md, Traces: attribute values are cut to 2048 characters
// by default (the hostile-header test bounds them by the constant, so a
// larger constant passed it), and an OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT
// sets another bound. Spans carry service.name, service.version and
// service.instance.id.
func TestNewProvider_AttributeBoundIs2048AndResourceNamesTheInstance(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{{"", 2048}, {"100", 100}} {
		t.Run("limit="+tc.env, func(t *testing.T) {
			t.Setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "")
			t.Setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", tc.env)
			var out syncbuf.Buffer
			tp, shutdown, err := NewProvider(context.Background(), Config{Service: "user", Version: "v1.2.3", InstanceID: "user-7", Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			rt := httptransport.NewRouter()
			rt.Handle("GET /x", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			base := serve(t, rt, Server(tp, Propagator()))
			req, _ := http.NewRequest("GET", base+"/x", nil)
			req.Header.Set("User-Agent", strings.Repeat("A", 8<<10))
			if got := do(t, req); got != http.StatusOK {
				t.Fatalf("answered %d; want 200", got)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			line := out.String()
			if n := strings.Count(line, "A"); n < tc.want || n > tc.want+100 {
				t.Errorf("span line holds %d bytes of an 8 KB User-Agent; want %d (and a few of other text)", n, tc.want)
			}
			for _, kv := range [][2]string{{"service.name", "user"}, {"service.version", "v1.2.3"}, {"service.instance.id", "user-7"}} {
				if want := `"Key":"` + kv[0] + `","Value":{"Type":"STRING","Value":"` + kv[1] + `"}`; !strings.Contains(line, want) {
					t.Errorf("span has no resource attribute %s=%s: %.600s", kv[0], kv[1], line)
				}
			}
		})
	}
}

// observability.md, Traces: the server span of a handler that panics has
// the panic's text as its status, at most 200 bytes, and no
// http.response.status_code for http.ErrAbortHandler, which cuts the
// connection (no 500 was answered).
func TestServer_PanicStatusIsBoundedAndAnAbortHasNoStatusCode(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	rt := httptransport.NewRouter()
	rt.Handle("GET /long", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(strings.Repeat("p", 10<<10)) }))
	rt.Handle("GET /abort", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	base := serve(t, rt, Server(tp, Propagator()))

	req, _ := http.NewRequest("GET", base+"/long", nil)
	if got := do(t, req); got != http.StatusInternalServerError {
		t.Fatalf("answered %d; want 500", got)
	}
	req, _ = http.NewRequest("GET", base+"/abort", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
		resp.Body.Close()
		t.Fatalf("an aborted handler answered %d; want the connection cut", resp.StatusCode)
	}

	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byName[s.Name] = s
	}
	long, ok := byName["GET /long"]
	if !ok {
		t.Fatalf("no span GET /long in %d spans", len(byName))
	}
	if long.Status.Code != codes.Error || !strings.HasPrefix(long.Status.Description, "panic: ppp") || len(long.Status.Description) > 200+len("…") {
		t.Errorf("status %v (%d bytes); want Error, the panic's text, at most 200 bytes", long.Status.Code, len(long.Status.Description))
	}
	abort, ok := byName["GET /abort"]
	if !ok {
		t.Fatalf("no span GET /abort in %v", byName)
	}
	if abort.Status.Code != codes.Error {
		t.Errorf("abort span status %v; want Error", abort.Status.Code)
	}
	for _, a := range abort.Attributes {
		if a.Key == "http.response.status_code" {
			t.Errorf("abort span has http.response.status_code %v; want none (the connection was cut)", a.Value.Emit())
		}
	}
}
