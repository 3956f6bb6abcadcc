package grpctransport

import (
	"context"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The server's own failures are exactly UNKNOWN, INTERNAL, DATA_LOSS,
// UNIMPLEMENTED, UNAVAILABLE and DEADLINE_EXCEEDED (docs/grpc.md): those
// get an access line under transport.AccessErrors and count as errors on
// the mesh page; every other code is an answer. Each code goes through a
// real interceptor in errors-only mode.
func TestGuard_ExactlyTheServersFailuresAreLoggedInErrorsMode(t *testing.T) {
	failures := map[codes.Code]bool{
		codes.Unknown: true, codes.Internal: true, codes.DataLoss: true,
		codes.Unimplemented: true, codes.Unavailable: true, codes.DeadlineExceeded: true,
	}
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		if ServerFailure(c) != failures[c] {
			t.Errorf("ServerFailure(%s) = %v, want %v", c, ServerFailure(c), failures[c])
		}
		var out syncbuf.Buffer
		in := UnaryServerInterceptor(log.NewLogfmtLogger(&out), WithAccessLog(transport.AccessErrors))
		_, _ = in(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/t.S/M"}, func(context.Context, any) (any, error) {
			return nil, status.Error(c, "x")
		})
		if logged := strings.Contains(out.String(), "msg=access"); logged != failures[c] {
			t.Errorf("%s in errors-only mode: access line %v, want %v", c, logged, failures[c])
		}
	}
}
