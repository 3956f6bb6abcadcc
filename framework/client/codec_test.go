package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// A request the client cannot encode and an answer it cannot decode are
// ErrUnencodable and ErrUndecodable, as over gRPC: kind internal (500
// with their code when passed on), their outcome code theirs rather than
// "unavailable", not ErrUnreachable, the decoder's error wrapped, and the
// answering instance's address left out of the public text.
func TestInvoke_CodecErrorsHaveTheirOwnKind(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Write([]byte(`{"id": "not a number"}`)) //nolint:errcheck // the test reads what arrives
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := must(NewFromInstancer(sd.FixedInstancer{addr}, "svc"))
	defer c.Close()

	err := c.Invoke(context.Background(), http.MethodPost, "/x", map[string]any{"c": make(chan int)}, nil)
	if !errors.Is(err, ErrUnencodable) || errors.Is(err, ErrUnreachable) || OutcomeCode(err) != CodeUnencodable || calls.Load() != 0 {
		t.Fatalf("unencodable: err %v, outcome %q, %d calls; want ErrUnencodable, %s, none sent", err, OutcomeCode(err), calls.Load(), CodeUnencodable)
	}
	if st, body := httptransport.Classify(err); st != http.StatusInternalServerError || body.Code != CodeUnencodable {
		t.Fatalf("unencodable passed on as %d %+v; want 500 %s", st, body, CodeUnencodable)
	}

	var out struct{ ID int }
	err = c.Invoke(context.Background(), http.MethodGet, "/x", nil, &out, Idempotent())
	var jerr *json.UnmarshalTypeError
	if !errors.Is(err, ErrUndecodable) || errors.Is(err, ErrUnreachable) || OutcomeCode(err) != CodeUndecodable ||
		!errors.As(err, &jerr) || !strings.Contains(err.Error(), addr) || calls.Load() != 1 {
		t.Fatalf("undecodable: err %v, outcome %q, %d calls; want ErrUndecodable from %s, %s, one call", err, OutcomeCode(err), calls.Load(), addr, CodeUndecodable)
	}
	if pub := svcerr.Public(err); strings.Contains(pub, addr) {
		t.Fatalf("public text %q names the instance", pub)
	}
	if st, body := httptransport.Classify(err); st != http.StatusInternalServerError || body.Code != CodeUndecodable {
		t.Fatalf("undecodable passed on as %d %+v; want 500 %s", st, body, CodeUndecodable)
	}
	if st := c.State(); st.Ejected != 0 || st.Retries != 0 {
		t.Fatalf("state %+v: want no retry, no ejection", st)
	}
}
