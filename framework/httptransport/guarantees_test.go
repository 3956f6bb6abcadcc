package httptransport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// http.md: an internal error's text is logged, never sent — a svcerr of
// kind Internal too, whatever its message. A canceled request is 499.
func TestClassify_InternalTextIsNeverSentCanceledIs499(t *testing.T) {
	st, body := Classify(fmt.Errorf("save: %w", svcerr.New(svcerr.Internal, "db", "password=hunter2 rejected")))
	if st != http.StatusInternalServerError || body.Error != "internal error" {
		t.Errorf("Internal svcerr → %d %+v; want 500 \"internal error\"", st, body)
	}
	if st, body := Classify(fmt.Errorf("call: %w", context.Canceled)); st != StatusClientClosedRequest || body.Code != "canceled" {
		t.Errorf("context.Canceled → %d %+v; want 499 canceled", st, body)
	}
}

// http.md: the body limit defaults to 1 MiB (Handler with maxBody 0), and
// a declared Content-Length over it is refused before the handler runs.
func TestHandler_DefaultBodyLimitIs1MiBRefusedBeforeTheHandler(t *testing.T) {
	var calls atomic.Int32
	h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			WriteError(w, err)
		}
	}), log.NewNopLogger(), 0)
	post := func(n int) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/x", bytes.NewReader(make([]byte, n)))) // sets Content-Length
		return rec
	}
	if rec := post(1 << 20); rec.Code != http.StatusOK || calls.Load() != 1 {
		t.Fatalf("1 MiB: %d (handler calls %d), want 200 (1 MiB is within the default)", rec.Code, calls.Load())
	}
	rec := post(1<<20 + 1)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "body_too_large") {
		t.Fatalf("1 MiB + 1: %d %s, want 413 body_too_large", rec.Code, rec.Body)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the handler ran for a declared Content-Length over the limit (%d calls)", n)
	}
}

// DecodeJSON without LimitBody in front (a hand-wired go-kit server)
// still stops at DefaultMaxBody.
func TestDecodeJSON_LimitsTheBodyWithoutLimitBody(t *testing.T) {
	body := `{"name":"` + strings.Repeat("x", DefaultMaxBody) + `"}`
	_, err := DecodeJSON[createReq]()(context.Background(), httptest.NewRequest("POST", "/users", strings.NewReader(body)))
	var tooBig *http.MaxBytesError
	if !errors.As(err, &tooBig) || tooBig.Limit != DefaultMaxBody {
		t.Fatalf("err = %v; want *http.MaxBytesError at %d", err, DefaultMaxBody)
	}
}

// A body limit above 1 MiB holds for DecodeJSON behind a middleware of
// the service's that wraps the body (to count or log it): DecodeJSON
// does not stack its own 1 MiB on it, and the limit itself still holds.
func TestDecodeJSON_KeepsHandlersLimitBehindABodyWrappingMiddleware(t *testing.T) {
	const limit = 4 << 20
	dec := DecodeJSON[createReq]()
	var got atomic.Int64
	wrapping := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = struct{ io.ReadCloser }{r.Body} // a counting or logging wrapper
			next.ServeHTTP(w, r)
		})
	}
	h := Handler(wrapping(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := dec(r.Context(), r)
		if err != nil {
			WriteError(w, err)
			return
		}
		got.Store(int64(len(v.(createReq).Name)))
	})), log.NewNopLogger(), limit)
	post := func(n int) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		body := `{"name":"` + strings.Repeat("x", n) + `"}`
		req := httptest.NewRequest("POST", "/users", strings.NewReader(body))
		req.ContentLength = -1 // unknown: the limit is met while reading
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := post(2 << 20); rec.Code != http.StatusOK || got.Load() != 2<<20 {
		t.Fatalf("2 MiB body under a 4 MiB limit: %d %s, decoded %d bytes; want 200", rec.Code, rec.Body, got.Load())
	}
	if rec := post(limit); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over the 4 MiB limit: %d %s; want 413", rec.Code, rec.Body)
	}
}

// Recover re-panics http.ErrAbortHandler, as net/http expects of it (the
// connection is aborted, nothing is logged or answered).
func TestRecover_ErrAbortHandlerIsRepanicked(t *testing.T) {
	rec := httptest.NewRecorder()
	var got any
	func() {
		defer func() { got = recover() }()
		Recover(log.NewNopLogger())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			panic(http.ErrAbortHandler)
		})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	}()
	if got != http.ErrAbortHandler { //nolint:errorlint // the sentinel itself
		t.Fatalf("recovered %v; want http.ErrAbortHandler re-panicked", got)
	}
	if rec.Body.Len() != 0 {
		t.Fatalf("answered %q to an aborted handler", rec.Body)
	}
}

// A handler that panics after writing its status keeps that answer: no
// second status, no error body appended to what it wrote.
func TestRecover_PanicAfterTheHeaderAppendsNothing(t *testing.T) {
	rec := httptest.NewRecorder()
	Recover(log.NewNopLogger())(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "partial")
		panic("late bug")
	})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusAccepted || rec.Body.String() != "partial" {
		t.Fatalf("answer %d %q; want 202 \"partial\" untouched", rec.Code, rec.Body)
	}
}

// http.md: health probes are logged at debug level, other requests at
// info.
func TestAccessLog_HealthProbesAtDebug(t *testing.T) {
	var out syncbuf.Buffer
	h := Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), log.NewLogfmtLogger(&out), 0)
	for _, p := range []string{"/healthz", "/readyz", "/users"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d access lines, want 3:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		probe := strings.Contains(l, "path=/healthz ") || strings.Contains(l, "path=/readyz ")
		if want := map[bool]string{true: "level=debug", false: "level=info"}[probe]; !strings.HasPrefix(l, want) {
			t.Errorf("access line %q; want %s", l, want)
		}
	}
}

// A malformed Idempotency-Key is refused with 400 before the handler
// runs: serving the call without it would drop the caller's protection.
func TestHandler_MalformedIdempotencyKeyIs400(t *testing.T) {
	var calls atomic.Int32
	h := Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }), log.NewNopLogger(), 0)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/pay", nil)
	req.Header.Set(idempotency.Header, "has space")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "invalid_idempotency_key") || calls.Load() != 0 {
		t.Fatalf("malformed key: %d %s, handler calls %d; want 400 invalid_idempotency_key, no call", rec.Code, rec.Body, calls.Load())
	}
}

// A valid key is the served call's (idempotency.NewServedContext): the
// handler finds it, and two keyed calls it makes to one path are two
// effects, each with a key of its own.
func TestHandler_IdempotencyKeyIsTheServedCalls(t *testing.T) {
	var key string
	var derived [2]string
	h := Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		key, _ = idempotency.FromContext(r.Context())
		derived[0], derived[1] = idempotency.Derive(r.Context(), "POST /entries"), idempotency.Derive(r.Context(), "POST /entries")
	}), log.NewNopLogger(), 0)
	req := httptest.NewRequest("POST", "/pay", nil)
	req.Header.Set(idempotency.Header, "k-1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if key != "k-1" || derived[0] == derived[1] {
		t.Fatalf("handler saw key %q and derived %q; want k-1 and two keys", key, derived)
	}
}
