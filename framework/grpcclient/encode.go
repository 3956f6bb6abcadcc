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
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// CodeUnencodable is the code of ErrUnencodable.
const CodeUnencodable = "request_not_encodable"

// ErrUnencodable matches (errors.Is) a call whose request message the
// client could not marshal — a proto3 string that is not valid UTF-8,
// say. No instance was involved: the call is not retried, counts against
// no instance, and the marshaller's error stays wrapped (errors.Is(err,
// proto.Error) for protobuf's). Its kind is svcerr.Internal: the calling
// service built the request.
var ErrUnencodable = svcerr.New(svcerr.Internal, CodeUnencodable, "request cannot be encoded")

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
	return &unencodableErr{svcerr.Wrap(svcerr.Internal, CodeUnencodable, "grpc client: "+m.full+": request cannot be encoded", err)}
}

// unencodableErr is a request the client could not marshal: the same on
// every instance and no instance's doing. It is no failure of the
// instance, and no latency sample for the balancer either (Refused), as
// the quick local failure says nothing of its speed.
type unencodableErr struct{ err *svcerr.Error }

func (e *unencodableErr) Error() string           { return e.err.Error() }
func (e *unencodableErr) Unwrap() error           { return e.err }
func (e *unencodableErr) RetryClass() retry.Class { return retry.Fatal }
func (e *unencodableErr) InstanceFailure() bool   { return false }
func (e *unencodableErr) Refused() bool           { return true }

var _ balancer.Refused = (*unencodableErr)(nil)
