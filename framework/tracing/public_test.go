package tracing

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/requestid"
)

// The caller's trace context every test here sends: a sampled trace,
// baggage, and metadata that is not trace context.
const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerReqID  = "req-from-outside-1"
	callerTenant = "acme"
)

func callerRequest(t *testing.T, url, flags string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-"+flags)
	req.Header.Set("baggage", "tenant=evil,role=admin")
	req.Header.Set(requestid.Header, callerReqID)
	req.Header.Set("X-Tenant", callerTenant)
	return req
}

// inHandler is what a handler saw of a request's context.
type inHandler struct {
	mu                sync.Mutex
	trace, bag, reqID string
	tenant            string
	sampled           bool // the server span's decision
	calls             int
}

func (h *inHandler) record(w http.ResponseWriter, r *http.Request) {
	id, _ := requestid.FromContext(r.Context())
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	sc := trace.SpanContextFromContext(r.Context())
	h.trace, h.sampled = sc.TraceID().String(), sc.IsSampled()
	h.bag = baggage.FromContext(r.Context()).String()
	h.reqID, h.tenant = id, r.Header.Get("X-Tenant")
}

func (h *inHandler) seen() inHandler {
	h.mu.Lock()
	defer h.mu.Unlock()
	return inHandler{trace: h.trace, bag: h.bag, reqID: h.reqID, tenant: h.tenant, sampled: h.sampled, calls: h.calls}
}

// endedSpans waits (up to 10 s) for n spans to have ended.
func endedSpans(t *testing.T, spans *tracetest.InMemoryExporter, n int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := spans.GetSpans()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// docs/observability.md, "Callers outside the mesh": with WithPublicEndpoint a
// request's server span starts a trace of its own, with a link to the
// caller's span, and the handler sees neither the caller's trace nor its
// baggage, but still its request ID and headers. Without it the span is
// the caller's child and its baggage reaches the handler, as inside the
// mesh it must.
func TestServer_PublicEndpointStartsATraceOfItsOwnLinkedToTheCallers(t *testing.T) {
	for _, public := range []bool{false, true} {
		spans := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
		defer tp.Shutdown(context.Background())
		var opts []ServerOption
		if public {
			opts = append(opts, WithPublicEndpoint())
		}
		var h inHandler
		rt := httptransport.NewRouter()
		rt.Handle("GET /x", http.HandlerFunc(h.record))
		base := serve(t, rt, Server(tp, Propagator(), opts...))

		if got := do(t, callerRequest(t, base+"/x", "01")); got != http.StatusOK {
			t.Fatalf("public=%v: answered %d; want 200", public, got)
		}
		got := endedSpans(t, spans, 1)
		if len(got) != 1 {
			t.Fatalf("public=%v: %d spans; want the server span", public, len(got))
		}
		s, seen := got[0], h.seen()
		if seen.reqID != callerReqID || seen.tenant != callerTenant {
			t.Errorf("public=%v: handler saw request ID %q, X-Tenant %q; want %q, %q", public, seen.reqID, seen.tenant, callerReqID, callerTenant)
		}
		if seen.trace != s.SpanContext.TraceID().String() {
			t.Errorf("public=%v: handler's trace %s, not its server span's %s", public, seen.trace, s.SpanContext.TraceID())
		}
		if !public {
			if s.SpanContext.TraceID().String() != callerTrace || s.Parent.SpanID().String() != callerSpan || len(s.Links) != 0 {
				t.Errorf("public=false: span in trace %s, parent %s, %d links; want the caller's child (%s, %s), no link",
					s.SpanContext.TraceID(), s.Parent.SpanID(), len(s.Links), callerTrace, callerSpan)
			}
			if seen.bag != "tenant=evil,role=admin" && seen.bag != "role=admin,tenant=evil" {
				t.Errorf("public=false: handler's baggage %q; want the caller's", seen.bag)
			}
			continue
		}
		if s.SpanContext.TraceID().String() == callerTrace || s.Parent.IsValid() {
			t.Errorf("public=true: span in trace %s with parent %s; want a new trace, no parent", s.SpanContext.TraceID(), s.Parent.SpanID())
		}
		if len(s.Links) != 1 || s.Links[0].SpanContext.TraceID().String() != callerTrace || s.Links[0].SpanContext.SpanID().String() != callerSpan {
			t.Errorf("public=true: links %+v; want one, to the caller's span %s/%s", s.Links, callerTrace, callerSpan)
		}
		if seen.bag != "" {
			t.Errorf("public=true: handler's baggage %q; want none", seen.bag)
		}
	}
}

// The caller's sampled flag decides nothing at a public endpoint: a
// caller's unsampled trace does not keep the service's sampler from
// recording (AlwaysSample for new traces), and a caller's sampled one
// does not make it record (NeverSample). Without the option the caller
// decides both, as parent-based sampling does inside the mesh.
func TestServer_PublicEndpointSamplesByItsOwnSampler(t *testing.T) {
	for _, c := range []struct {
		root          sdktrace.Sampler
		flags         string
		public, wants bool
	}{
		{sdktrace.AlwaysSample(), "00", false, false},
		{sdktrace.AlwaysSample(), "00", true, true},
		{sdktrace.NeverSample(), "01", false, true},
		{sdktrace.NeverSample(), "01", true, false},
	} {
		spans := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithSampler(sdktrace.ParentBased(c.root)))
		defer tp.Shutdown(context.Background())
		var opts []ServerOption
		if c.public {
			opts = append(opts, WithPublicEndpoint())
		}
		var h inHandler
		base := serve(t, http.HandlerFunc(h.record), Server(tp, Propagator(), opts...))
		if got := do(t, callerRequest(t, base+"/x", c.flags)); got != http.StatusOK {
			t.Fatalf("answered %d; want 200", got)
		}
		seen := h.seen()
		if seen.calls != 1 {
			t.Fatalf("handler ran %d times; want 1", seen.calls)
		}
		// The handler's span context carries the server span's decision;
		// the exporter shows a recorded span once it ended.
		if seen.sampled != c.wants {
			t.Errorf("sampler %s, caller's flags %s, public=%v: sampled=%v; want %v", c.root.Description(), c.flags, c.public, seen.sampled, c.wants)
		}
		if c.wants {
			if got := endedSpans(t, spans, 1); len(got) != 1 {
				t.Errorf("sampler %s, caller's flags %s, public=%v: %d spans exported; want 1", c.root.Description(), c.flags, c.public, len(got))
			}
		}
	}
}

// With tracing off (a no-op provider) there is no span to link from, so
// a public endpoint follows nothing of the caller's: its trace would
// otherwise go on in the service's calls, to services that record it.
func TestServer_PublicEndpointWithTracingOffFollowsNothing(t *testing.T) {
	for _, public := range []bool{false, true} {
		var opts []ServerOption
		if public {
			opts = append(opts, WithPublicEndpoint())
		}
		var h inHandler
		base := serve(t, http.HandlerFunc(h.record), Server(noop.NewTracerProvider(), Propagator(), opts...))
		if got := do(t, callerRequest(t, base+"/x", "01")); got != http.StatusOK {
			t.Fatalf("answered %d; want 200", got)
		}
		seen := h.seen()
		followed := seen.trace == callerTrace && seen.bag != ""
		ignored := seen.trace == trace.TraceID{}.String() && seen.bag == ""
		if public && !ignored || !public && !followed {
			t.Errorf("public=%v: handler saw trace %s, baggage %q", public, seen.trace, seen.bag)
		}
		if seen.reqID != callerReqID {
			t.Errorf("public=%v: handler saw request ID %q; want %q", public, seen.reqID, callerReqID)
		}
	}
}
