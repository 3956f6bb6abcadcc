package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// invalidInput is a request whose MarshalJSON refuses it with an error of
// a kind of its own, as a validating encoder does.
type invalidInput struct{}

var errInvalidInput = svcerr.New(svcerr.InvalidArgument, "invalid_input", "invalid input")

func (invalidInput) MarshalJSON() ([]byte, error) { return nil, errInvalidInput }

// A request refused by the caller's encoder with an error of a kind of its
// own keeps that kind when passed on (400 invalid_input, not 500
// request_not_encodable), and is still ErrUnencodable: nothing sent, not
// retried. An encoder's internal error stays request_not_encodable.
func TestInvoke_EncoderErrorKeepsItsOwnKind(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c := must(NewFromInstancer(sd.FixedInstancer{strings.TrimPrefix(srv.URL, "http://")}, "svc"))
	defer c.Close()

	err := c.Invoke(context.Background(), http.MethodPost, "/x", invalidInput{}, nil, Idempotent())
	if !errors.Is(err, ErrUnencodable) || !errors.Is(err, errInvalidInput) || calls.Load() != 0 {
		t.Fatalf("err %v, %d calls; want ErrUnencodable wrapping the encoder's error, none sent", err, calls.Load())
	}
	if st, body := httptransport.Classify(fmt.Errorf("get user: %w", err)); st != http.StatusBadRequest || body.Code != "invalid_input" || body.Error != "get user: invalid input" {
		t.Fatalf("passed on as %d %+v; want 400 invalid_input: get user: invalid input", st, body)
	}
	if k, code := svcerr.KindOf(err), OutcomeCode(err); k != svcerr.InvalidArgument || code != "invalid_input" {
		t.Fatalf("kind %s, outcome %q; want the encoder's", k, code)
	}
	if st := c.State(); st.Retries != 0 {
		t.Fatalf("state %+v: want no retry", st)
	}

	internal := map[string]any{"v": internalMarshal{}}
	err = c.Invoke(context.Background(), http.MethodPost, "/x", internal, nil)
	if st, body := httptransport.Classify(err); !errors.Is(err, ErrUnencodable) || st != http.StatusInternalServerError || body.Code != CodeUnencodable {
		t.Fatalf("internal encoder error %v passed on as %d %+v; want 500 %s", err, st, body, CodeUnencodable)
	}
}

// internalMarshal's MarshalJSON fails with an internal error of its own.
type internalMarshal struct{}

func (internalMarshal) MarshalJSON() ([]byte, error) {
	return nil, svcerr.New(svcerr.Internal, "bad_state", "bad state")
}
