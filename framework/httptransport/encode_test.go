package httptransport

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	kithttp "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

type avgResp struct {
	Mean  float64 `json:"mean"`
	Count int     `json:"count"`
}

type line struct {
	At time.Time `json:"at"`
}

type chanResp struct {
	N  int      `json:"n"`
	Ch chan int `json:"ch"`
}

// A response encoding/json refuses (NaN, ±Inf, a year after 9999, a chan)
// is answered 500 internal, and the log names the route and the value's
// place. go-kit's encoder wrote 200 first and then the error body, which
// a client read as a zero response with no error (j53c finding 1).
func TestEncodeJSON_UnencodableResponseIs500WithTheRouteLogged(t *testing.T) {
	logs := &syncbuf.Buffer{}
	logger := log.NewLogfmtLogger(logs)
	rt := NewRouter()
	answer := func(v any) func(context.Context, any) (any, error) {
		return func(context.Context, any) (any, error) { return v, nil }
	}
	dec := func(context.Context, *http.Request) (any, error) { return nil, nil }
	rt.Handle("POST /average", NewServer(answer(avgResp{Mean: math.NaN(), Count: 2}), dec, EncodeJSON, logger))
	rt.Handle("POST /inf", NewServer(answer(&avgResp{Mean: math.Inf(1), Count: 2}), dec, EncodeJSONStatus(201), logger))
	rt.Handle("GET /lines", NewServer(answer([]line{{}, {At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}), dec, EncodeJSON, logger))
	rt.Handle("GET /chan", NewServer(answer(chanResp{N: 7}), dec, EncodeJSON, logger))
	rt.Handle("GET /fine", NewServer(answer(avgResp{Mean: 1.5, Count: 2}), dec, EncodeJSON, logger))
	rt.Handle("POST /created", NewServer(answer(avgResp{Mean: 1.5, Count: 2}), dec, EncodeJSONStatus(201), logger))
	srv := httptest.NewServer(Handler(rt, logger, 0))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 10 * time.Second}

	do := func(method, path string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(`{}`))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, tc := range []struct{ method, path, logged string }{
		{"POST", "/average", `response of POST /average cannot be encoded as JSON at .mean: json: unsupported value: NaN`},
		{"POST", "/inf", `response of POST /inf cannot be encoded as JSON at .mean: json: unsupported value: +Inf`},
		{"GET", "/lines", `response of GET /lines cannot be encoded as JSON at [1].at:`},
		{"GET", "/chan", `response of GET /chan cannot be encoded as JSON at .ch: json: unsupported type: chan int`},
	} {
		st, body, hdr := do(tc.method, tc.path)
		var eb ErrorBody
		if st != 500 || json.Unmarshal([]byte(body), &eb) != nil || eb.Code != "internal" || eb.Error != "internal error" ||
			!strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s: %d %q; want 500 {internal error, internal} alone", tc.method, tc.path, st, body)
		}
		if !strings.Contains(logs.String(), tc.logged) {
			t.Fatalf("%s %s: log lacks %q:\n%s", tc.method, tc.path, tc.logged, logs)
		}
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{{"GET", "/fine", 200}, {"POST", "/created", 201}} {
		st, body, hdr := do(tc.method, tc.path)
		if st != tc.status || body != `{"mean":1.5,"count":2}`+"\n" || hdr.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%s %s: %d %q %v; want %d with the JSON", tc.method, tc.path, st, body, hdr, tc.status)
		}
	}
}

// nopWriter is a ResponseWriter that keeps nothing, so only the encoder's
// own allocations are counted.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// Encoding into a buffer first costs no allocation over go-kit's
// EncodeJSONResponse (the buffer and its encoder are pooled).
func TestEncodeJSON_NoMoreAllocationsThanGoKits(t *testing.T) {
	if raceOn {
		t.Skip("the race detector drops pooled buffers at random")
	}
	w := &nopWriter{h: http.Header{}}
	resp := any(avgResp{Mean: 1.5, Count: 2})
	ctx := context.Background()
	ours := testing.AllocsPerRun(200, func() { _ = EncodeJSON(ctx, w, resp) })
	kits := testing.AllocsPerRun(200, func() { _ = kithttp.EncodeJSONResponse(ctx, w, resp) })
	if ours > kits {
		t.Fatalf("EncodeJSON: %.1f allocations per response, go-kit's %.1f", ours, kits)
	}
	t.Logf("allocations per response: EncodeJSON %.1f, go-kit's %.1f", ours, kits)
}

func BenchmarkEncodeJSON(b *testing.B) {
	w := &nopWriter{h: http.Header{}}
	resp := any(avgResp{Mean: 1.5, Count: 2})
	ctx := context.Background()
	b.Run("warren", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = EncodeJSON(ctx, w, resp)
		}
	})
	b.Run("go-kit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = kithttp.EncodeJSONResponse(ctx, w, resp)
		}
	})
}
