package bootstrap

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// --load-shedding=false turns shedding off on the gRPC transport too. A
// generated NewTransports gives the gRPC server d.Shedder (nil with the
// flag off) and d.GRPCServerOptions(); a gRPC server given no shedder
// makes one of its own, so the gRPC endpoint kept shedding with the
// default limiter while the operator had turned shedding off.
func TestRun_LoadSheddingFalseReachesTheGRPCServer(t *testing.T) {
	for _, off := range []bool{false, true} {
		servers := make(chan *grpcserver.Server, 1)
		shedders := make(chan *shed.Limiter, 1)
		build := func(ctx context.Context, d *Deps) (Transports, error) {
			opts, err := grpcserver.Settings{Listen: "127.0.0.1:0"}.Options(d.Config, d.Shedder)
			if err != nil {
				return Transports{}, err
			}
			gs, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, "svc-1") }, append(opts, d.GRPCServerOptions()...)...)
			if err != nil {
				return Transports{}, err
			}
			servers <- gs
			shedders <- d.Shedder
			ts, err := hello(ctx, d)
			ts.Servers = []transport.Server{gs}
			return ts, err
		}
		args := []string{"--registry", "toy", "--listen", "127.0.0.1:0", "--grace", "0s"}
		if off {
			args = append(args, "--load-shedding=false")
		}
		start(t, args, build)
		gs, shared := <-servers, <-shedders
		switch {
		case off && gs.Shedder() != nil:
			t.Errorf("--load-shedding=false: the gRPC server still sheds (a limiter of its own)")
		case !off && (gs.Shedder() == nil || gs.Shedder() != shared):
			t.Errorf("default: the gRPC server's shedder %p, want the HTTP server's %p", gs.Shedder(), shared)
		}
	}
}

// --load-shedding=false wins over a build function that exempts routes
// the way Deps.Shedder's comment says (app.WithShedding(d.Shedder,
// shed.WithExempt(…))): with the flag off d.Shedder is nil, and
// WithShedding(nil) means "the default limiter", so shedding came back
// on. Here 260 requests in flight at once, more than the default limit
// of 200, must all reach the handler.
func TestRun_LoadSheddingFalseWinsOverTheBuildsExemptions(t *testing.T) {
	const inFlight = 260
	port := freePort(t)
	var entered, refused atomic.Int64
	release := make(chan struct{})
	build := func(ctx context.Context, d *Deps) (Transports, error) {
		d.AppOptions = append(d.AppOptions, app.WithShedding(d.Shedder, shed.WithExempt("POST /payments")))
		return HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			io.WriteString(w, "hi")
		})), nil
	}
	start(t, []string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s", "--drain-timeout", "5s", "--load-shedding=false"}, build)
	tr := &http.Transport{MaxIdleConnsPerHost: inFlight}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Get("http://127.0.0.1:" + port + "/work")
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				refused.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for entered.Load()+refused.Load() < inFlight && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := refused.Load(); n > 0 {
		t.Fatalf("--load-shedding=false: %d of %d requests in flight refused with 503 (%d reached the handler)", n, inFlight, entered.Load())
	}
	if n := entered.Load(); n != inFlight {
		t.Fatalf("%d of %d requests reached the handler", n, inFlight)
	}
}
