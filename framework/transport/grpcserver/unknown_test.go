package grpcserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A call of a method the server does not have — a removed one, or a new
// one a caller of the next release sends to this older instance — leaves
// an access line like any call (grpc-go's own answer left none: report
// j50b 7), echoes the request ID, and is answered UNIMPLEMENTED with
// grpc-go's text plus Warren's ErrorInfo: reason unknown_method for a
// service the server has, unknown_service for one it has not, which
// callers recognise (grpctransport.UnknownMethod) to retry elsewhere. A
// handler's own UNIMPLEMENTED carries its own code, not these.
func TestUnknownMethod_LoggedAndAnsweredWithAReason(t *testing.T) {
	var out syncbuf.Buffer
	s, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, "n") }, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "echo", Nonce: "n", Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second),
		Logger: log.NewLogfmtLogger(&out), AccessLog: transport.AccessAll})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return within 20s of Close")
		}
	})
	cc := dial(t, "grpc://"+addr.String())

	for _, tc := range []struct {
		method, reason, message string
	}{
		{"/warren.test.v1.Echo/Hello", grpctransport.CodeUnknownMethod, "unknown method Hello for service warren.test.v1.Echo"},
		{"/payment.v2.Payment/Refund", grpctransport.CodeUnknownService, "unknown service payment.v2.Payment"},
	} {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), grpctransport.RequestIDKey, "req-"+tc.reason), 20*time.Second)
		var hdr metadata.MD
		err := cc.Invoke(ctx, tc.method, wrapperspb.String("x"), new(wrapperspb.StringValue), grpc.Header(&hdr))
		cancel()
		st := status.Convert(err)
		if st.Code() != codes.Unimplemented || st.Message() != tc.message {
			t.Fatalf("%s: %v; want UNIMPLEMENTED %q", tc.method, st, tc.message)
		}
		var reason, domain string
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason, domain = info.GetReason(), info.GetDomain()
			}
		}
		if reason != tc.reason || domain != grpctransport.ErrorDomain || !grpctransport.UnknownMethod(st) {
			t.Fatalf("%s: ErrorInfo reason %q domain %q (UnknownMethod %v); want %q, %q", tc.method, reason, domain,
				grpctransport.UnknownMethod(st), tc.reason, grpctransport.ErrorDomain)
		}
		if got := hdr.Get(grpctransport.RequestIDKey); len(got) != 1 || got[0] != "req-"+tc.reason {
			t.Fatalf("%s: request ID header %v, want the caller's", tc.method, got)
		}
		line := "msg=access transport=grpc method=" + tc.method + " code=Unimplemented "
		if !strings.Contains(out.String(), line) || !strings.Contains(out.String(), "request_id=req-"+tc.reason) {
			t.Fatalf("%s: no access line %q with the request ID in:\n%s", tc.method, line, out.String())
		}
	}

	// A handler's UNIMPLEMENTED (a method not written yet) is its own.
	_, err = grpctest.Say(context.Background(), cc, "fail:unimplemented:not_implemented")
	if st := status.Convert(err); st.Code() != codes.Unimplemented || grpctransport.UnknownMethod(st) {
		t.Fatalf("handler's UNIMPLEMENTED: %v (UnknownMethod %v); want UNIMPLEMENTED, not an unknown method", st, grpctransport.UnknownMethod(st))
	}
	// The served method still works.
	if got, err := grpctest.Say(context.Background(), cc, "hi"); err != nil || got != "hi" {
		t.Fatalf("Say = %q, %v", got, err)
	}
}
