package grpctransport

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail that
// carries a Warren error's code (Reason) and kind (Metadata["kind"]).
const ErrorDomain = "warren"

var kindCode = map[svcerr.Kind]codes.Code{
	svcerr.InvalidArgument:    codes.InvalidArgument,
	svcerr.NotFound:           codes.NotFound,
	svcerr.AlreadyExists:      codes.AlreadyExists,
	svcerr.FailedPrecondition: codes.FailedPrecondition,
	svcerr.Unauthenticated:    codes.Unauthenticated,
	svcerr.PermissionDenied:   codes.PermissionDenied,
	svcerr.TooLarge:           codes.ResourceExhausted,
	svcerr.ResourceExhausted:  codes.ResourceExhausted,
	svcerr.Unavailable:        codes.Unavailable,
	svcerr.DeadlineExceeded:   codes.DeadlineExceeded,
	svcerr.Unimplemented:      codes.Unimplemented,
	svcerr.Internal:           codes.Internal,
}

// CodeForKind is the status code of an error of kind k (Internal for a
// kind it does not know).
func CodeForKind(k svcerr.Kind) codes.Code {
	if c, ok := kindCode[k]; ok {
		return c
	}
	return codes.Internal
}

// KindForCode is the inverse mapping, for statuses without Warren's
// ErrorInfo (from a server in another language, or grpc-go's own):
// codes without a kind of their own map to the nearest one.
func KindForCode(c codes.Code) svcerr.Kind {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange:
		return svcerr.InvalidArgument
	case codes.NotFound:
		return svcerr.NotFound
	case codes.AlreadyExists:
		return svcerr.AlreadyExists
	case codes.FailedPrecondition, codes.Aborted:
		return svcerr.FailedPrecondition
	case codes.Unauthenticated:
		return svcerr.Unauthenticated
	case codes.PermissionDenied:
		return svcerr.PermissionDenied
	case codes.ResourceExhausted:
		return svcerr.ResourceExhausted
	case codes.Unavailable:
		return svcerr.Unavailable
	case codes.DeadlineExceeded:
		return svcerr.DeadlineExceeded
	case codes.Unimplemented:
		return svcerr.Unimplemented
	}
	return svcerr.Internal
}

// Status returns the gRPC status a server answers err with. A
// *svcerr.Error keeps its message (but an Internal one says only
// "internal error", as over HTTP) and carries its code and kind in an
// ErrorInfo; svcerr.ErrOverloaded becomes RESOURCE_EXHAUSTED; an error
// that already is a status (from grpc-go, or a handler's status.Error)
// passes as is; context errors become CANCELED and DEADLINE_EXCEEDED;
// anything else is INTERNAL without its text, which the server logs.
func Status(err error) *status.Status {
	var se *svcerr.Error
	var gs interface{ GRPCStatus() *status.Status }
	switch {
	case err == nil:
		return status.New(codes.OK, "")
	case errors.As(err, &se):
		if se.Is(svcerr.ErrOverloaded) && !se.FromPeer() {
			return overloadStatus(time.Second)
		}
		msg := svcerr.Public(err) // a cause wrapped with svcerr.Wrap stays in the logs
		if se.Kind == svcerr.Internal {
			msg = "internal error"
		}
		return errorStatus(status.New(CodeForKind(se.Kind), msg), se)
	case errors.As(err, &gs):
		return gs.GRPCStatus()
	case errors.Is(err, context.DeadlineExceeded):
		return withInfo(status.New(codes.DeadlineExceeded, "deadline exceeded"), string(svcerr.DeadlineExceeded), svcerr.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request canceled")
	}
	return withInfo(status.New(codes.Internal, "internal error"), string(svcerr.Internal), svcerr.Internal)
}

// OverloadStatus is a load shedder's refusal: RESOURCE_EXHAUSTED, reason
// "overloaded" (kind unavailable, so it rebuilds as svcerr.ErrOverloaded)
// and a RetryInfo of retryAfter, how long to leave this instance alone.
func OverloadStatus(retryAfter time.Duration) *status.Status { return overloadStatus(retryAfter) }

func overloadStatus(retryAfter time.Duration) *status.Status {
	st := status.New(codes.ResourceExhausted, svcerr.ErrOverloaded.Message)
	d, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: svcerr.CodeOverloaded, Domain: ErrorDomain, Metadata: map[string]string{"kind": string(svcerr.Unavailable)}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)},
	)
	if err != nil {
		return st
	}
	return d
}

// metaPassedOn is the ErrorInfo metadata key that marks another
// service's error passed on (svcerr.PassedOn), as HTTP's "passed_on".
const metaPassedOn = "passed_on"

// errorStatus is st with se's ErrorInfo, marked when se is a peer's error
// passed on, and a RetryInfo when se names a delay (svcerr.Exhausted: a
// quota or rate limit).
func errorStatus(st *status.Status, se *svcerr.Error) *status.Status {
	md := map[string]string{"kind": string(se.Kind)}
	if se.FromPeer() {
		md[metaPassedOn] = "true"
	}
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: se.Code, Domain: ErrorDomain, Metadata: md}}
	if se.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(se.RetryAfter)})
	}
	d, err := st.WithDetails(details...)
	if err != nil {
		return st // details only fail to marshal on a broken proto runtime
	}
	return d
}

// PassedOn reports whether st carries another service's error that the
// server returned as it came (svcerr.PassedOn): its code says nothing of
// whether the server acted on the call.
func PassedOn(st *status.Status) bool {
	return warrenInfo(st).GetMetadata()[metaPassedOn] == "true"
}

// FromWarren reports whether st comes from a Warren server's handler: it
// carries Warren's ErrorInfo.
func FromWarren(st *status.Status) bool { return warrenInfo(st) != nil }

// warrenInfo is st's ErrorInfo from a Warren server (domain ErrorDomain),
// or nil.
func warrenInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info
		}
	}
	return nil
}

func withInfo(st *status.Status, code string, kind svcerr.Kind) *status.Status {
	return errorStatus(st, svcerr.New(kind, code, ""))
}

// FromStatus rebuilds the peer's business error from a status: Warren's
// ErrorInfo gives the exact kind and code; without it the kind comes from
// the status code (KindForCode) and the code is the kind, except that
// grpc-go's own message-size refusal (MessageTooLarge) is too_large, as
// HTTP's 413: passed on over HTTP as a quota's 429 it told the caller to
// send the same request again later.
func FromStatus(st *status.Status) *svcerr.Error {
	kind := KindForCode(st.Code())
	if MessageTooLarge(st) {
		kind = svcerr.TooLarge
	}
	code := string(kind)
	if info := warrenInfo(st); info != nil {
		if k := info.GetMetadata()["kind"]; k != "" {
			kind = svcerr.Kind(k)
		}
		if info.GetReason() != "" {
			code = info.GetReason()
		}
	}
	return svcerr.Peer(kind, code, st.Message(), RetryAfter(st))
}

// MessageTooLarge reports whether st is grpc-go's own RESOURCE_EXHAUSTED
// for a message over a size limit, on either side: "grpc: received
// message larger than max (N vs. M)", "… after decompression larger than
// max", "trying to send message larger than max". It carries no Warren
// ErrorInfo (a handler's status does), and it is no quota: the request
// or its response is too large for every instance.
func MessageTooLarge(st *status.Status) bool {
	msg := st.Message()
	return st.Code() == codes.ResourceExhausted && warrenInfo(st) == nil &&
		strings.Contains(msg, "message") && strings.Contains(msg, "larger than max")
}

// RetryAfter is the delay of the status's RetryInfo, 0 without one.
func RetryAfter(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return max(ri.GetRetryDelay().AsDuration(), 0)
		}
	}
	return 0
}

// Overloaded reports whether st is a load shedder's refusal (see
// OverloadStatus), not another service's passed on.
func Overloaded(st *status.Status) bool {
	if st.Code() != codes.ResourceExhausted {
		return false
	}
	info := warrenInfo(st)
	return info.GetReason() == svcerr.CodeOverloaded && info.GetMetadata()[metaPassedOn] != "true"
}

// CodeUnknownMethod and CodeUnknownService are the ErrorInfo reasons of a
// Warren server's UNIMPLEMENTED for a call of a method it does not serve
// (grpcserver answers it with UnknownServiceHandler): of a service it
// serves, or of a service it does not. No handler ran. Handlers should not
// use these codes for their own errors: callers retry them elsewhere.
const (
	CodeUnknownMethod  = "unknown_method"
	CodeUnknownService = "unknown_service"
)

// UnknownMethodStatus is the answer to a call of method of service when
// the server has no such method: UNIMPLEMENTED with grpc-go's own text
// ("unknown method M for service S", "unknown service S" when knownService
// is false) and Warren's ErrorInfo (reason CodeUnknownMethod or
// CodeUnknownService, kind unimplemented), by which a caller tells it from
// a handler's UNIMPLEMENTED.
func UnknownMethodStatus(service, method string, knownService bool) *status.Status {
	if !knownService {
		return withInfo(status.New(codes.Unimplemented, "unknown service "+service), CodeUnknownService, svcerr.Unimplemented)
	}
	return withInfo(status.New(codes.Unimplemented, "unknown method "+method+" for service "+service), CodeUnknownMethod, svcerr.Unimplemented)
}

// UnknownMethod reports whether st is a server's own answer that it has
// no such method or service (UnknownMethodStatus, or grpc-go's
// UNIMPLEMENTED from a server without Warren's handler, known by its
// text): the call reached no handler, so it may be sent to another
// instance whatever the method, and says nothing of this one's health —
// in a rolling deploy an instance of the previous release lacks the new
// methods. A handler's own UNIMPLEMENTED (svcerr.Unimplemented, a method
// not written yet) is not this, nor is another service's answer passed on.
func UnknownMethod(st *status.Status) bool {
	if st.Code() != codes.Unimplemented {
		return false
	}
	if info := warrenInfo(st); info != nil {
		r := info.GetReason()
		return (r == CodeUnknownMethod || r == CodeUnknownService) && info.GetMetadata()[metaPassedOn] != "true"
	}
	// grpc-go's server writes exactly these (server.go, handleStream).
	msg := st.Message()
	return strings.HasPrefix(msg, "unknown service ") ||
		strings.HasPrefix(msg, "unknown method ") && strings.Contains(msg, " for service ")
}
