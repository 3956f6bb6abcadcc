package requestid_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// seen records the request IDs a server's handlers saw.
type seen struct {
	mu  sync.Mutex
	ids []string
}

func (s *seen) add(ctx context.Context) {
	id, _ := requestid.FromContext(ctx)
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
}

func (s *seen) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		return ""
	}
	return s.ids[len(s.ids)-1]
}

// An ID a service puts in a context itself (from a queued message's
// header, an order reference) that no peer would accept as it is — not
// printable ASCII, or longer than MaxLen — is made one: the calls it
// makes carry the same ID its own logs show. Before, grpc-go refused to
// send it and the call failed INTERNAL, blamed on the instance called;
// over HTTP the callee dropped it and logged an ID of its own.
func TestNewContext_AnIDNoPeerAcceptsIsMadeOneBothTransportsCarry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := memory.NewServer()
	once := client.WithRetry(retry.WithMaxAttempts(1))

	var overGRPC seen
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		overGRPC.add(ctx)
		return h(ctx, req)
	}
	grpctest.StartAppServing(t, srv.Registry(), "echo", "echo-1", []grpcserver.Option{grpcserver.WithUnaryInterceptors(record)})
	gc, err := grpcclient.New(ctx, srv.Registry(), "echo", grpcclient.WithClientOptions(once))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	say := grpcclient.NewEndpoint(gc, grpctest.SayMethod,
		func(_ context.Context, req any) (any, error) { return wrapperspb.String(req.(string)), nil },
		func(_ context.Context, reply any) (any, error) {
			return reply.(*wrapperspb.StringValue).GetValue(), nil
		},
		&wrapperspb.StringValue{}, grpcclient.Idempotent())

	var overHTTP seen
	rt := httptransport.NewRouter()
	rt.Handle("GET /x", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		overHTTP.add(r.Context())
		w.Write([]byte(`{}`))
	}))
	a, err := app.New("web", rt, srv.Registry(), app.WithListen("127.0.0.1:0"), app.WithID("web-1"),
		app.WithSignals(false), app.WithGracePeriod(0), app.WithSelfCheckTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }() // ends when stop runs
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("web did not stop within 30s")
		}
	}()
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("web not ready")
	}
	hc, err := client.New(ctx, srv.Registry(), "web", once)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()

	for _, raw := range []string{"order-42", "commande-é-42", "job 7", "line\nbreak", strings.Repeat("k", 300)} {
		cctx := requestid.NewContext(ctx, raw)
		id, ok := requestid.FromContext(cctx)
		if !ok || !requestid.Valid(id) {
			t.Errorf("NewContext(%.20q) carries %.20q; want an ID peers accept", raw, id)
		}
		if raw == "order-42" && id != raw {
			t.Errorf("a valid ID was changed: %q", id)
		}
		if _, err := say(cctx, "hi"); err != nil {
			t.Errorf("gRPC call with ID %.20q: %v", raw, err)
		} else if got := overGRPC.last(); got != id {
			t.Errorf("gRPC server saw ID %.20q; the caller has %.20q", got, id)
		}
		if err := hc.Invoke(cctx, "GET", "/x", nil, nil); err != nil {
			t.Errorf("HTTP call with ID %.20q: %v", raw, err)
		} else if got := overHTTP.last(); got != id {
			t.Errorf("HTTP server saw ID %.20q; the caller has %.20q", got, id)
		}
	}
}
