package grpcclient

import (
	"context"
	"strings"

	kitgrpc "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// CodeUnencodable is the code of ErrUnencodable.
const CodeUnencodable = client.CodeUnencodable

// ErrUnencodable matches (errors.Is) a call whose request the client
// could not turn into its message: the method's own encoder
// (EncodeRequestFunc) returned an error, or the message could not be
// marshalled — a proto3 string that is not valid UTF-8, say. No instance
// was involved (nothing was sent): the call is not retried, counts
// against no instance, and the encoder's or marshaller's error stays
// wrapped (errors.Is/As reach it; errors.Is(err, proto.Error) for
// protobuf's). Its kind is svcerr.Internal: the calling service built the
// request — unless the encoder's error has a kind of its own, which it
// keeps (client.Unencodable). It is client.ErrUnencodable: one sentinel
// for both transports.
var ErrUnencodable = client.ErrUnencodable

// CodeUndecodable is the code of ErrUndecodable.
const CodeUndecodable = client.CodeUndecodable

// ErrUndecodable matches (errors.Is) a call whose answer the method's
// response decoder (DecodeResponseFunc) refused: the instance answered,
// so it is not client.ErrUnreachable, and the decoder's error stays
// wrapped. Its kind is svcerr.Internal. It is not retried (the handler
// ran, and a call that is not idempotent must not run twice) and counts
// against no instance: a reply this client's code cannot read — a
// rolling deploy's instance of another release, say — is a disagreement
// between the two releases, not a sign of the instance's health, and
// ejecting it would take its other methods out of rotation too (as with
// an unknown method, report j50b). HTTP's decode errors are alike: it is
// client.ErrUndecodable.
var ErrUndecodable = client.ErrUndecodable

// marshalPrefix is how grpc-go's client reports a request its codec
// refused, as INTERNAL. A server that cannot marshal its response sends
// the same text (after its handler ran), so the text alone does not say
// whose message it was: see unencodable.
const marshalPrefix = "grpc: error while marshaling: "

// unencodable returns the error of a call that failed because its own
// request could not be marshalled, nil otherwise. Only for an INTERNAL
// with grpc-go's marshalling text, it builds the request message again
// (the method's encoder, as the call did) and marshals it with grpc-go's
// proto codec: a request that fails with the very error the status names
// never left this process, since grpc-go marshals it before sending. A
// server's own marshalling failure, of its response, does not match and
// stays the instance's *Error. Nothing runs on the happy path.
func (m *Method) unencodable(ctx context.Context, req any, st *status.Status) error {
	if st.Code() != codes.Internal || !strings.HasPrefix(st.Message(), marshalPrefix) {
		return nil
	}
	codec := encoding.GetCodecV2(grpcproto.Name)
	if codec == nil {
		return nil
	}
	msg, err := m.enc(context.WithValue(ctx, kitgrpc.ContextKeyRequestMethod, m.full), req)
	if err != nil || msg == nil {
		return nil
	}
	b, err := codec.Marshal(msg)
	if err == nil {
		b.Free()
		return nil
	}
	if st.Message() != marshalPrefix+err.Error() {
		return nil
	}
	return &localErr{client.Unencodable("grpc client: "+m.full, err)}
}

// localErr is a call that failed in this process before reaching the
// instance — a request the method's encoder refused or the codec could
// not marshal: the same on every instance and no instance's doing. It is
// no failure of the instance, and no latency sample for the balancer
// either (Refused), as the quick local failure says nothing of its speed.
type localErr struct{ err error }

func (e *localErr) Error() string           { return e.err.Error() }
func (e *localErr) Unwrap() error           { return e.err }
func (e *localErr) RetryClass() retry.Class { return retry.Fatal }
func (e *localErr) InstanceFailure() bool   { return false }
func (e *localErr) Refused() bool           { return true }

var _ balancer.Refused = (*localErr)(nil)

// encode runs the method's encoder, its error marked as the caller's
// (ErrUnencodable): the call never reached the instance. An encoder error
// of a kind of its own keeps it (client.Unencodable).
func (m *Method) encode(ctx context.Context, req any) (any, error) {
	msg, err := m.enc(ctx, req)
	if err != nil {
		return nil, &localErr{client.Unencodable("grpc client: "+m.full, err)}
	}
	return msg, nil
}

// decode runs the method's decoder, its error marked as an answer that
// could not be read (ErrUndecodable); call adds the instance.
func (m *Method) decode(ctx context.Context, reply any) (any, error) {
	resp, err := m.dec(ctx, reply)
	if err != nil {
		return nil, &undecodableErr{err: svcerr.Wrap(svcerr.Internal, CodeUndecodable, "grpc client: "+m.full+": response cannot be decoded", err)}
	}
	return resp, nil
}

// undecodableErr is an answer the method's decoder refused (see
// ErrUndecodable). Its text names the instance that answered, for the
// logs only (PrivateText). Not Refused: the instance answered after its
// own time, a latency sample like any answer.
type undecodableErr struct {
	err      *svcerr.Error
	instance string // host:port
}

func (e *undecodableErr) Error() string           { return e.instance + ": " + e.err.Error() }
func (e *undecodableErr) Unwrap() error           { return e.err }
func (e *undecodableErr) PrivateText() bool       { return true }
func (e *undecodableErr) RetryClass() retry.Class { return retry.Fatal }
func (e *undecodableErr) InstanceFailure() bool   { return false }
