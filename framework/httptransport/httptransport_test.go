package httptransport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

type createReq struct {
	Name string `json:"name"`
}

var errExists = svcerr.New(svcerr.AlreadyExists, "user_exists", "user already exists")

func newTestServer(t *testing.T, maxBody int64) (*httptest.Server, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	logger := log.NewLogfmtLogger(logs)
	rt := NewRouter()
	rt.Handle("POST /users", NewServer(func(ctx context.Context, req any) (any, error) {
		r := req.(createReq)
		switch r.Name {
		case "taken":
			return nil, fmt.Errorf("create %q: %w", r.Name, errExists)
		case "secret":
			return nil, errors.New("db password=hunter2 rejected")
		}
		id, _ := requestid.FromContext(ctx)
		return map[string]string{"name": r.Name, "request_id": id}, nil
	}, DecodeJSON[createReq](), EncodeJSON, logger))
	rt.Handle("GET /panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler bug") }))
	srv := httptest.NewServer(Handler(rt, logger, maxBody))
	t.Cleanup(srv.Close)
	return srv, logs
}

func doJSON(t *testing.T, method, url, body string, hdr map[string]string) (int, ErrorBody, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var eb ErrorBody
	_ = json.Unmarshal(raw, &eb)
	return resp.StatusCode, eb, resp.Header, string(raw)
}

func TestServer_BadInputsGetStatusAndJSONErrorBody(t *testing.T) {
	srv, _ := newTestServer(t, 64)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/users", `{"name":`, 400, "malformed_json"},
		{"wrong type", "POST", "/users", `{"name": 7}`, 400, "malformed_json"},
		{"trailing data", "POST", "/users", `{"name":"a"} x`, 400, "malformed_json"},
		{"body over limit", "POST", "/users", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413, "body_too_large"},
		{"unknown route", "GET", "/nope", "", 404, "route_not_found"},
		{"wrong method", "DELETE", "/users", "", 405, "method_not_allowed"},
		{"business error", "POST", "/users", `{"name":"taken"}`, 409, "user_exists"},
		{"internal error hides text", "POST", "/users", `{"name":"secret"}`, 500, "internal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, eb, hdr, raw := doJSON(t, tc.method, srv.URL+tc.path, tc.body, nil)
			if st != tc.status || eb.Code != tc.code || eb.Error == "" {
				t.Fatalf("got %d %s, want %d code %q", st, raw, tc.status, tc.code)
			}
			if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			if strings.Contains(raw, "hunter2") {
				t.Fatalf("internal error text leaked: %s", raw)
			}
		})
	}
	_, _, hdr, _ := doJSON(t, "DELETE", srv.URL+"/users", "", nil)
	if hdr.Get("Allow") == "" {
		t.Error("405 without Allow header")
	}
}

func TestServer_BodyOverLimitWithoutContentLengthIs413(t *testing.T) {
	srv, _ := newTestServer(t, 64)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"name":"` + strings.Repeat("y", 500) + `"}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.URL+"/users", pr) // chunked: no Content-Length
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestServer_PanicIs500LoggedWithStackAndServerKeepsServing(t *testing.T) {
	srv, logs := newTestServer(t, 0)
	st, eb, _, _ := doJSON(t, "GET", srv.URL+"/panic", "", nil)
	if st != 500 || eb.Code != "internal" {
		t.Fatalf("panic → %d %+v", st, eb)
	}
	if l := logs.String(); !strings.Contains(l, "handler panicked") || !strings.Contains(l, "goroutine") {
		t.Fatalf("panic not logged with stack: %s", l)
	}
	st, _, _, raw := doJSON(t, "POST", srv.URL+"/users", `{"name":"ok"}`, nil)
	if st != 200 || !strings.Contains(raw, `"name":"ok"`) {
		t.Fatalf("after panic: %d %s", st, raw)
	}
}

func TestServer_RequestIDPropagatedOrGenerated(t *testing.T) {
	srv, logs := newTestServer(t, 0)
	_, _, hdr, raw := doJSON(t, "POST", srv.URL+"/users", `{"name":"a"}`, map[string]string{requestid.Header: "req-123"})
	if hdr.Get(requestid.Header) != "req-123" || !strings.Contains(raw, `"request_id":"req-123"`) {
		t.Fatalf("given ID not propagated: %v %s", hdr, raw)
	}
	if !strings.Contains(logs.String(), "request_id=req-123") {
		t.Fatalf("access log lacks the ID: %s", logs.String())
	}
	_, _, hdr, _ = doJSON(t, "POST", srv.URL+"/users", `{"name":"a"}`, map[string]string{requestid.Header: "bad id\twith tab"})
	if got := hdr.Get(requestid.Header); got == "" || strings.Contains(got, " ") {
		t.Fatalf("invalid ID not replaced: %q", got)
	}
}

func TestServer_EmptyBodyDecodesToZeroValue(t *testing.T) {
	srv, _ := newTestServer(t, 0)
	st, _, _, raw := doJSON(t, "POST", srv.URL+"/users", "", nil)
	if st != 200 || !strings.Contains(raw, `"name":""`) {
		t.Fatalf("%d %s", st, raw)
	}
}

func TestKindForStatus_InvertsTheMapping(t *testing.T) {
	for kind, st := range kindStatus {
		if got := KindForStatus(st); got != kind {
			t.Errorf("KindForStatus(%d) = %s, want %s", st, got, kind)
		}
	}
	// Statuses no kind answers with: the nearest kind, else Internal.
	for _, row := range []struct {
		status int
		kind   svcerr.Kind
	}{
		{405, svcerr.InvalidArgument},
		{502, svcerr.Unavailable},
		// A body not received in time (body_timeout, a proxy's 408): the
		// call's transport failed, not the service (Internal, 500 when
		// passed on) nor the caller's deadline (DeadlineExceeded).
		{408, svcerr.Unavailable},
		{402, svcerr.Internal},
		{406, svcerr.Internal},
		{410, svcerr.Internal},
		{418, svcerr.Internal},
		{505, svcerr.Internal},
		{599, svcerr.Internal},
	} {
		if got := KindForStatus(row.status); got != row.kind {
			t.Errorf("KindForStatus(%d) = %s, want %s", row.status, got, row.kind)
		}
	}
}

// A method the service has not written answers 501 with its message (not
// hidden as an internal error's is), and a client rebuilds the kind.
func TestClassify_UnimplementedIs501WithItsMessage(t *testing.T) {
	st, body := Classify(fmt.Errorf("refund: %w", svcerr.Errorf(svcerr.Unimplemented, "not_implemented", "%s is not implemented yet", "Refund")))
	if st != http.StatusNotImplemented || body.Code != "not_implemented" || body.Error != "refund: Refund is not implemented yet" {
		t.Fatalf("Classify = %d %+v", st, body)
	}
	if KindForStatus(st) != svcerr.Unimplemented {
		t.Fatalf("KindForStatus(%d) = %s", st, KindForStatus(st))
	}
}
