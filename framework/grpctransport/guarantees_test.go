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
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A downstream's overload or unknown-method answer passed on by this
// service is not this service's own: it is marked passed_on, and neither
// Overloaded nor UnknownMethod (which make a client retry elsewhere
// without holding it against the instance) reports it.
func TestStatus_PassedOnAnswersAreNotThisServersOwn(t *testing.T) {
	own := OverloadStatus(time.Second)
	if !Overloaded(own) || PassedOn(own) {
		t.Fatalf("own overload: Overloaded %v PassedOn %v", Overloaded(own), PassedOn(own))
	}
	passed := Status(errors.Join(errors.New("call inventory"), FromStatus(own)))
	if Overloaded(passed) || !PassedOn(passed) {
		t.Errorf("passed-on overload %v: Overloaded %v PassedOn %v; want passed on, not an overload of ours",
			passed, Overloaded(passed), PassedOn(passed))
	}
	// Even as RESOURCE_EXHAUSTED with the overload reason (a peer's
	// answer of that kind), passed on is not ours.
	if p := Status(svcerr.Peer(svcerr.ResourceExhausted, svcerr.CodeOverloaded, "busy", time.Second)); p.Code() != codes.ResourceExhausted || Overloaded(p) {
		t.Errorf("passed-on RESOURCE_EXHAUSTED overloaded %v: Overloaded %v, want false", p, Overloaded(p))
	}
	unk := UnknownMethodStatus("inv.v1.Inventory", "Reserve", true)
	if !UnknownMethod(unk) {
		t.Fatalf("own unknown method not recognised: %v", unk)
	}
	if p := Status(FromStatus(unk)); UnknownMethod(p) || !PassedOn(p) {
		t.Errorf("passed-on unknown method %v: UnknownMethod %v PassedOn %v; want passed on, not ours", p, UnknownMethod(p), PassedOn(p))
	}
	// grpc-go's own UNIMPLEMENTED (a server without Warren's handler) is
	// known by its text.
	if !UnknownMethod(status.New(codes.Unimplemented, "unknown method Reserve for service inv.v1.Inventory")) ||
		!UnknownMethod(status.New(codes.Unimplemented, "unknown service inv.v1.Inventory")) {
		t.Error("grpc-go's own unknown method/service answers not recognised")
	}
}

// MessageTooLarge is grpc-go's own size refusal only, not a handler's
// RESOURCE_EXHAUSTED whose text happens to match.
func TestMessageTooLarge_OnlyGRPCsOwn(t *testing.T) {
	if !MessageTooLarge(status.New(codes.ResourceExhausted, "grpc: received message larger than max (5000000 vs. 4194304)")) {
		t.Error("grpc-go's size refusal not recognised")
	}
	if st := Status(svcerr.New(svcerr.ResourceExhausted, "quota", "message larger than max quota")); MessageTooLarge(st) {
		t.Errorf("a handler's quota answer %v taken for a size refusal", st)
	}
}

// A negative RetryInfo delay from a peer is no delay.
func TestRetryAfter_NegativeIsZero(t *testing.T) {
	st, err := status.New(codes.Unavailable, "x").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(-5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if d := RetryAfter(st); d != 0 {
		t.Fatalf("RetryAfter = %s, want 0", d)
	}
}

// call runs the interceptor as grpc-go would, with md as the incoming
// metadata.
func call(in grpc.UnaryServerInterceptor, method string, md metadata.MD, h grpc.UnaryHandler) error {
	ctx := metadata.NewIncomingContext(context.Background(), md)
	_, err := in(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, h)
	return err
}

// The interceptor takes a valid x-request-id and replaces a hostile one,
// refuses a malformed idempotency key before the handler, turns a panic
// into INTERNAL, and logs health checks at debug.
func TestUnaryServerInterceptor_Guarantees(t *testing.T) {
	var out syncbuf.Buffer
	in := UnaryServerInterceptor(log.NewLogfmtLogger(&out))
	var got string
	seeID := func(ctx context.Context, _ any) (any, error) { got, _ = requestid.FromContext(ctx); return "r", nil }
	call(in, "/t.S/M", metadata.Pairs(RequestIDKey, "abc-1"), seeID)
	if got != "abc-1" {
		t.Errorf("valid request ID: handler saw %q", got)
	}
	call(in, "/t.S/M", metadata.Pairs(RequestIDKey, "evil id\nlevel=error"), seeID)
	if got == "" || strings.ContainsAny(got, " \n") {
		t.Errorf("hostile request ID reached the handler as %q", got)
	}

	ran := false
	err := call(in, "/t.S/M", metadata.Pairs(IdempotencyKey, "has space"), func(context.Context, any) (any, error) { ran = true; return "r", nil })
	if status.Code(err) != codes.InvalidArgument || ran {
		t.Errorf("malformed idempotency key: %v, handler ran %v; want INVALID_ARGUMENT before the handler", err, ran)
	}
	var key string
	var derived [2]string
	call(in, "/t.S/M", metadata.Pairs(IdempotencyKey, "k-1"), func(ctx context.Context, _ any) (any, error) {
		key, _ = idempotency.FromContext(ctx)
		derived[0], derived[1] = idempotency.Derive(ctx, "/t.S/Debit"), idempotency.Derive(ctx, "/t.S/Debit")
		return "r", nil
	})
	if key != "k-1" {
		t.Errorf("idempotency key in the handler's context: %q", key)
	}
	// The key is the served call's: two keyed calls the handler makes to
	// one method are two effects (idempotency.NewServedContext).
	if derived[0] == derived[1] {
		t.Errorf("two keyed calls to one method from a served call derived one key %q", derived[0])
	}

	err = call(in, "/t.S/Boom", nil, func(context.Context, any) (any, error) { panic("bug") })
	if status.Code(err) != codes.Internal {
		t.Errorf("panicking handler: %v, want INTERNAL", err)
	}

	var probes syncbuf.Buffer
	in = UnaryServerInterceptor(log.NewLogfmtLogger(&probes))
	call(in, HealthMethodPrefix+"Check", nil, seeID)
	call(in, "/t.S/M", nil, seeID)
	lines := strings.Split(strings.TrimSpace(probes.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "level=debug") || !strings.HasPrefix(lines[1], "level=info") {
		t.Errorf("access lines %q; want the health check at debug, the call at info", lines)
	}
}

// A real server echoes the request ID in the response header, so the
// caller can quote it.
func TestUnaryServerInterceptor_EchoesTheRequestID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(UnaryServerInterceptor(log.NewNopLogger())))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { srv.Stop(); <-served }()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var hdr metadata.MD
	ctx = metadata.AppendToOutgoingContext(ctx, RequestIDKey, "trace-me-1")
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if v := hdr.Get(RequestIDKey); len(v) != 1 || v[0] != "trace-me-1" {
		t.Fatalf("response header %s = %v, want [trace-me-1]", RequestIDKey, v)
	}
}
