package grpcclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	kitgrpc "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// codecEndpoints returns the Say endpoint with enc and dec, called
// directly and, with a ClientOptions, through go-kit's client.
func codecEndpoints(c *grpcclient.Client, enc kitgrpc.EncodeRequestFunc, dec kitgrpc.DecodeResponseFunc) [2]func(context.Context, string) (any, error) {
	kitOpt := grpcclient.ClientOptions(kitgrpc.ClientBefore(func(ctx context.Context, _ *metadata.MD) context.Context { return ctx }))
	direct := grpcclient.NewEndpoint(c, grpctest.SayMethod, enc, dec, &wrapperspb.StringValue{}, grpcclient.Idempotent())
	viaKit := grpcclient.NewEndpoint(c, grpctest.SayMethod, enc, dec, &wrapperspb.StringValue{}, grpcclient.Idempotent(), kitOpt)
	wrap := func(ep func(context.Context, any) (any, error)) func(context.Context, string) (any, error) {
		return func(ctx context.Context, in string) (any, error) { return ep(ctx, in) }
	}
	return [2]func(context.Context, string) (any, error){wrap(direct), wrap(viaKit)}
}

func passString(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil }
func readString(_ context.Context, r any) (any, error) {
	return r.(*wrapperspb.StringValue).GetValue(), nil
}

// A method's own request encoder failing is the caller's error: nothing
// reaches an instance, and the call is grpcclient.ErrUnencodable wrapping
// the encoder's error — not client.ErrUnreachable, not retried (even when
// the encoder's error reads like a lost connection or carries a gRPC
// status), held against no instance, passed on over HTTP as 500. It was
// "service echo did not answer" (503 passed on), and an encoder's
// status.Error was taken for the instance's and counted against it.
func TestClient_EncoderErrorIsTheCallersError(t *testing.T) {
	a, b, c := ejectingPair(t)
	errNoID := errors.New("no id")
	cases := map[string]error{
		"plain": fmt.Errorf("encode: %w", errNoID),
		// Classify would retry an idempotent call on it.
		"reads like a cut connection": fmt.Errorf("encode: %w: %w", errNoID, io.ErrUnexpectedEOF),
		// Taken for the instance's own status before.
		"a status": fmt.Errorf("encode: %w: %w", errNoID, status.Error(codes.Unavailable, "no id")),
	}
	for name, encErr := range cases {
		t.Run(name, func(t *testing.T) {
			enc := func(context.Context, any) (any, error) { return nil, encErr }
			eps := codecEndpoints(c, enc, readString)
			before := c.State()
			for i := range 10 { // firstPick sends each to a
				_, err := eps[i%2](ctx30(t), "id")
				var ge *grpcclient.Error
				if !errors.Is(err, grpcclient.ErrUnencodable) || !errors.Is(err, errNoID) || errors.As(err, &ge) ||
					errors.Is(err, client.ErrUnreachable) || svcerr.KindOf(err) != svcerr.Internal {
					t.Fatalf("call %d = %v; want ErrUnencodable wrapping the encoder's error, kind internal, no instance's error", i, err)
				}
				if st, body := httptransport.Classify(fmt.Errorf("get user: %w", err)); st != http.StatusInternalServerError || body.Code != grpcclient.CodeUnencodable {
					t.Fatalf("passed on over HTTP as %d %+v; want 500 %s", st, body, grpcclient.CodeUnencodable)
				}
			}
			if st := c.State(); st.Ejected != 0 || st.Retries-st.Hedges != before.Retries-before.Hedges {
				t.Fatalf("state after 10 failed encodings %+v (before %+v): want no retry, no ejection", st, before)
			}
			if n := a.echo.Calls.Load() + b.echo.Calls.Load(); n != 0 {
				t.Fatalf("handlers ran %d times; want none: the request was never encoded", n)
			}
		})
	}
	if id, err := say(c)(ctx30(t), "id"); err != nil || id != "a" {
		t.Fatalf("a valid call after them = %q, %v; want a's answer (a not ejected)", id, err)
	}
}

// An encoder refusing its input with an error of a kind of its own keeps
// that kind when passed on (400 invalid_input, not 500
// request_not_encodable: client.Unencodable, shared with the HTTP client)
// and is still ErrUnencodable: nothing sent, not retried, no ejection.
func TestClient_EncoderErrorKeepsItsOwnKind(t *testing.T) {
	a, b, c := ejectingPair(t)
	errInvalid := svcerr.New(svcerr.InvalidArgument, "invalid_input", "invalid input")
	enc := func(context.Context, any) (any, error) { return nil, fmt.Errorf("encode: %w", errInvalid) }
	eps := codecEndpoints(c, enc, readString)
	for i := range 10 { // firstPick sends each to a
		_, err := eps[i%2](ctx30(t), "id")
		if !errors.Is(err, grpcclient.ErrUnencodable) || !errors.Is(err, errInvalid) || svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Fatalf("call %d = %v; want ErrUnencodable of the encoder's kind", i, err)
		}
		if st, body := httptransport.Classify(fmt.Errorf("get user: %w", err)); st != http.StatusBadRequest || body.Code != "invalid_input" {
			t.Fatalf("passed on over HTTP as %d %+v; want 400 invalid_input", st, body)
		}
	}
	if st := c.State(); st.Ejected != 0 || st.Retries != st.Hedges {
		t.Fatalf("state after 10 refused encodings %+v: want no retry, no ejection", st)
	}
	if n := a.echo.Calls.Load() + b.echo.Calls.Load(); n != 0 {
		t.Fatalf("handlers ran %d times; want none", n)
	}
}

// A method's response decoder failing is an answer this client cannot
// read: grpcclient.ErrUndecodable wrapping the decoder's error, naming the
// instance in the logs' text only, not client.ErrUnreachable, not retried
// (the handler ran once per call), and held against no instance.
func TestClient_DecoderErrorSaysTheAnswerCouldNotBeDecoded(t *testing.T) {
	a, b, c := ejectingPair(t)
	errSchema := errors.New("unknown status value 7")
	// Reads like a cut connection, which Classify would retry.
	dec := func(context.Context, any) (any, error) {
		return nil, fmt.Errorf("decode: %w (embedded JSON: %w)", errSchema, io.ErrUnexpectedEOF)
	}
	eps := codecEndpoints(c, passString, dec)
	addr := strings.TrimPrefix(a.ep, "grpc://")
	for i := range 10 { // firstPick sends each to a
		_, err := eps[i%2](ctx30(t), "id")
		if !errors.Is(err, grpcclient.ErrUndecodable) || !errors.Is(err, errSchema) || errors.Is(err, client.ErrUnreachable) ||
			svcerr.KindOf(err) != svcerr.Internal || !strings.Contains(err.Error(), "response cannot be decoded") ||
			!strings.Contains(err.Error(), addr) {
			t.Fatalf("call %d = %v; want ErrUndecodable from %s wrapping the decoder's error, kind internal", i, err, addr)
		}
		if pub := svcerr.Public(err); strings.Contains(pub, addr) {
			t.Fatalf("public text %q names the instance", pub)
		}
		if st, body := httptransport.Classify(err); st != http.StatusInternalServerError || body.Code != grpcclient.CodeUndecodable {
			t.Fatalf("passed on over HTTP as %d %+v; want 500 %s", st, body, grpcclient.CodeUndecodable)
		}
	}
	if n := a.echo.Calls.Load(); n != 10 || b.echo.Calls.Load() != 0 {
		t.Fatalf("handlers ran %d times on a, %d on b; want 10 on a: one per call, no retry", n, b.echo.Calls.Load())
	}
	if st := c.State(); st.Ejected != 0 {
		t.Fatalf("state after 10 undecodable answers %+v: want no ejection", st)
	}
}
