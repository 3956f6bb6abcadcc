package grpctransport

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The table of docs/grpc.md ("Errors on the wire"), written out: callers
// in other languages read the code, so a kind answered with another code
// breaks them even though Warren's own callers, which read the ErrorInfo,
// still rebuild the right kind (TestStatus_EveryKindRoundTrips compares
// with kindCode itself, so it cannot see a wrong entry there).
func TestGuard_EveryKindAnswersWithTheDocumentedCode(t *testing.T) {
	want := map[svcerr.Kind]codes.Code{
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
		svcerr.Internal:           codes.Internal,
		svcerr.Unimplemented:      codes.Unimplemented,
	}
	for kind, code := range want {
		st := Status(svcerr.New(kind, "c_"+string(kind), "some text"))
		if st.Code() != code {
			t.Errorf("kind %s answered %s, docs/grpc.md says %s", kind, st.Code(), code)
		}
	}
	if len(kindCode) != len(want) {
		t.Errorf("%d kinds mapped, docs/grpc.md lists %d", len(kindCode), len(want))
	}
}

// serve runs a real gRPC server on loopback with Warren's interceptor and
// unknown-service handler in front of grpc-go's health service, and
// returns a client connection to it. Both end with the test.
func serve(t *testing.T, logger log.Logger) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	known := func(svc string) bool { return svc == "grpc.health.v1.Health" }
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(UnaryServerInterceptor(logger)),
		grpc.UnknownServiceHandler(UnknownServiceHandler(logger, known)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }() // ends at Stop below
	t.Cleanup(func() { srv.Stop(); <-served })
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// A request ID a peer sends that is not Valid (here: longer than
// requestid.MaxLen) is replaced before it is echoed or logged, on served
// calls and on calls of unknown methods alike: the header and the access
// line carry a valid ID, never the caller's bytes. The handler's context
// is sanitized anyway (requestid.NewContext), so only the echo and the log
// show whether the interceptor checks.
func TestGuard_AnInvalidRequestIDIsNeitherEchoedNorLogged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	cc := serve(t, log.NewLogfmtLogger(&out))
	hostile := strings.Repeat("x", requestid.MaxLen+50)
	ctx = metadata.AppendToOutgoingContext(ctx, RequestIDKey, hostile)

	var hdr metadata.MD
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	var unknownHdr metadata.MD
	err := cc.Invoke(ctx, "/grpc.health.v1.Health/Nope", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}, grpc.Header(&unknownHdr))
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v, want UNIMPLEMENTED", err)
	}
	for name, h := range map[string]metadata.MD{"served call": hdr, "unknown method": unknownHdr} {
		v := h.Get(RequestIDKey)
		if len(v) != 1 || !requestid.Valid(v[0]) || v[0] == hostile {
			t.Errorf("%s: echoed %s = %q, want one valid ID in place of the caller's %d bytes", name, RequestIDKey, v, len(hostile))
		}
	}
	if strings.Contains(out.String(), hostile) {
		t.Errorf("the caller's invalid request ID reached the log:\n%s", out.String())
	}
}

// A panic is answered INTERNAL "internal error": its value (which may
// hold anything the handler had) is logged, never sent to the caller.
func TestGuard_APanicsValueIsLoggedNeverSent(t *testing.T) {
	var out syncbuf.Buffer
	in := UnaryServerInterceptor(log.NewLogfmtLogger(&out))
	const secret = "db password hunter2"
	err := call(in, "/t.S/Boom", nil, func(context.Context, any) (any, error) { panic(secret) })
	st := status.Convert(err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "hunter2") {
		t.Errorf("panicking handler answered %s %q; want INTERNAL without the panic's value", st.Code(), st.Message())
	}
	if !strings.Contains(out.String(), "hunter2") {
		t.Errorf("the panic's value is not in the log:\n%s", out.String())
	}
}

// A call of a method the server does not have is told apart by its
// ErrorInfo reason: unknown_method when the server serves the method's
// service, unknown_service when it does not (docs/grpc.md, access log).
func TestGuard_UnknownMethodAndUnknownServiceHaveTheirOwnReasons(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc := serve(t, log.NewNopLogger())
	for method, reason := range map[string]string{
		"/grpc.health.v1.Health/Nope": CodeUnknownMethod,
		"/other.v1.Other/Get":         CodeUnknownService,
	} {
		err := cc.Invoke(ctx, method, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
		st := status.Convert(err)
		var got string
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
				got = info.GetReason()
			}
		}
		if st.Code() != codes.Unimplemented || got != reason || !UnknownMethod(st) {
			t.Errorf("%s: %s reason %q (UnknownMethod %v), want UNIMPLEMENTED reason %q", method, st.Code(), got, UnknownMethod(st), reason)
		}
	}
}

// An error that is not a *svcerr.Error is answered INTERNAL without its
// text, and the server logs that text at error level with the request ID
// (docs/grpc.md, Errors on the wire): without the log line the cause is
// nowhere.
func TestGuard_AnInternalErrorsTextIsLoggedWithTheRequestID(t *testing.T) {
	var out syncbuf.Buffer
	in := UnaryServerInterceptor(log.NewLogfmtLogger(&out))
	err := call(in, "/t.S/M", metadata.Pairs(RequestIDKey, "rid-42"), func(context.Context, any) (any, error) {
		return nil, errors.New("disk on fire")
	})
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "fire") {
		t.Errorf("answered %s %q, want INTERNAL without the error's text", st.Code(), st.Message())
	}
	var found bool
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "level=error") && strings.Contains(l, "disk on fire") && strings.Contains(l, "request_id=rid-42") {
			found = true
		}
	}
	if !found {
		t.Errorf("no error line with the text and the request ID:\n%s", out.String())
	}
}
