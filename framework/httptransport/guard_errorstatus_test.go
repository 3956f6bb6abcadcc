package httptransport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// guardErrorServer is a real server whose one route answers the error
// kind named by ?kind= (or, for ?kind=deadline, its own context's error
// once the caller's X-Request-Timeout has passed).
func guardErrorServer(t *testing.T) string {
	t.Helper()
	rt := NewRouter()
	rt.Handle("GET /fail", NewServer(func(ctx context.Context, req any) (any, error) {
		kind := req.(string)
		if kind == "deadline" {
			select {
			case <-ctx.Done():
				return nil, ctx.Err() // a plain context deadline, no *svcerr.Error in the chain
			case <-time.After(10 * time.Second):
				return nil, errors.New("the caller's deadline never reached the handler")
			}
		}
		return nil, svcerr.New(svcerr.Kind(kind), "guard_"+kind, "answered "+kind)
	}, func(_ context.Context, r *http.Request) (any, error) { return r.URL.Query().Get("kind"), nil },
		EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(Handler(rt, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	return srv.URL
}

func guardGet(ctx context.Context, t *testing.T, url string, hdr map[string]string) (int, ErrorBody) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
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
	if err := json.Unmarshal(raw, &eb); err != nil {
		t.Fatalf("GET %s answered %d with a body that is not JSON: %q", url, resp.StatusCode, raw)
	}
	return resp.StatusCode, eb
}

// TestGuard_EveryKindAnswersTheStatusDocsHTTPMdLists pins the svcerr kind →
// status table of docs/http.md ("Errors") through a real server: every row,
// since a client rebuilds the kind from the status (KindForStatus) and
// decides retries on it, and a kind answered with another kind's status is
// retried (or not) as that other kind.
func TestGuard_EveryKindAnswersTheStatusDocsHTTPMdLists(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := guardErrorServer(t)
	table := []struct {
		kind   svcerr.Kind
		status int
	}{
		{svcerr.InvalidArgument, 400},
		{svcerr.Unauthenticated, 401},
		{svcerr.PermissionDenied, 403},
		{svcerr.NotFound, 404},
		{svcerr.AlreadyExists, 409},
		{svcerr.TooLarge, 413},
		{svcerr.FailedPrecondition, 422},
		{svcerr.ResourceExhausted, 429},
		{svcerr.Internal, 500},
		{svcerr.Unimplemented, 501},
		{svcerr.Unavailable, 503},
		{svcerr.DeadlineExceeded, 504},
	}
	for _, row := range table {
		st, body := guardGet(ctx, t, url+"/fail?kind="+string(row.kind), nil)
		if st != row.status || body.Code != "guard_"+string(row.kind) {
			t.Errorf("%s answered %d %q; docs/http.md says %d with the error's code", row.kind, st, body.Code, row.status)
		}
		if got := KindForStatus(st); got != row.kind {
			t.Errorf("a client reads %d as %s, want %s", st, got, row.kind)
		}
	}
}

// TestGuard_AContextDeadlineIs504DeadlineExceeded: a handler that returns
// its context's error after the caller's X-Request-Timeout has passed (no
// *svcerr.Error in the chain) answers 504 deadline_exceeded, not 500
// internal (docs/http.md, "Errors"), so the caller's client reads it as
// DeadlineExceeded.
func TestGuard_AContextDeadlineIs504DeadlineExceeded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := guardErrorServer(t)
	st, body := guardGet(ctx, t, url+"/fail?kind=deadline", map[string]string{TimeoutHeader: "50"})
	if st != http.StatusGatewayTimeout || body.Code != string(svcerr.DeadlineExceeded) {
		t.Fatalf("a handler cut by its deadline answered %d %+v; want 504 %s", st, body, svcerr.DeadlineExceeded)
	}
}
