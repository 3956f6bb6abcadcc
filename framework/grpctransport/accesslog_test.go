package grpctransport

import (
	"context"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// Every call gets an access line as an HTTP request does; with
// transport.AccessErrors only the server's failures (a NotFound answer is
// no failure), with AccessOff none.
func TestUnaryServerInterceptor_AccessLogModes(t *testing.T) {
	calls := map[string]error{
		"/t.S/Ok":      nil,
		"/t.S/Missing": svcerr.New(svcerr.NotFound, "x_not_found", "no x"),
		"/t.S/Boom":    svcerr.New(svcerr.Unavailable, "down", "down"),
	}
	for _, c := range []struct {
		mode transport.AccessLog
		want string // methods with an access line, space-separated
	}{
		{transport.AccessAll, "/t.S/Ok /t.S/Missing /t.S/Boom"},
		{transport.AccessErrors, "/t.S/Boom"},
		{transport.AccessOff, ""},
	} {
		var out syncbuf.Buffer
		in := UnaryServerInterceptor(log.NewLogfmtLogger(&out), WithAccessLog(c.mode))
		for m, err := range calls {
			in(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: m}, func(context.Context, any) (any, error) { return "r", err })
		}
		for m := range calls {
			logged := strings.Contains(out.String(), "msg=access transport=grpc method="+m+" ")
			if want := strings.Contains(c.want, m); logged != want {
				t.Errorf("%s: %s logged %v, want %v:\n%s", c.mode, m, logged, want, out.String())
			}
		}
	}
}
