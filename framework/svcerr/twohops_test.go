package svcerr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// one attempt, no ejection: each answer reaches the caller as it came.
var once = []client.Option{client.WithoutOutlier(), client.WithRetry(retry.WithMaxAttempts(1), retry.WithoutHedging())}

func startHTTP(t *testing.T, srv *memory.Server, name string, h http.Handler) {
	t.Helper()
	a, err := app.New(name, h, srv.Registry(), app.WithListen("127.0.0.1:0"), app.WithID(name+"-1"),
		app.WithSignals(false), app.WithGracePeriod(0), app.WithSelfCheckTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }() // ends when cancel runs at cleanup
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s", name)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("%s: Run returned before ready: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready within 30s", name)
	}
}

func sayEndpoint(t *testing.T, ctx context.Context, srv *memory.Server, svc string) func(context.Context, string) error {
	t.Helper()
	c, err := grpcclient.New(ctx, srv.Registry(), svc, grpcclient.WithClientOptions(once...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ep := grpcclient.NewEndpoint(c, grpctest.SayMethod,
		func(_ context.Context, req any) (any, error) { return wrapperspb.String(req.(string)), nil },
		func(_ context.Context, reply any) (any, error) {
			return reply.(*wrapperspb.StringValue).GetValue(), nil
		},
		&wrapperspb.StringValue{}, grpcclient.Idempotent())
	return func(ctx context.Context, in string) error { _, err := ep(ctx, in); return err }
}

type hopCase struct {
	kind svcerr.Kind
	code string
}

var hopCases = []hopCase{
	{svcerr.InvalidArgument, "bad_name"}, {svcerr.NotFound, "user_not_found"}, {svcerr.AlreadyExists, "user_exists"},
	{svcerr.FailedPrecondition, "frozen"}, {svcerr.Unauthenticated, "no_token"}, {svcerr.PermissionDenied, "not_yours"},
	{svcerr.TooLarge, "too_big"}, {svcerr.ResourceExhausted, "quota"}, {svcerr.Unavailable, "ledger_down"},
	{svcerr.DeadlineExceeded, "slow_ledger"}, {svcerr.Unimplemented, "later"}, {svcerr.Internal, "bug"},
	{svcerr.Unavailable, svcerr.CodeOverloaded},
}

// check says what is wrong with err, the caller's error for a kind and
// code the last service answered and the one between passed on.
func check(err error, c hopCase) string {
	var problems []string
	if !errors.Is(err, svcerr.New(c.kind, c.code, "")) {
		problems = append(problems, "errors.Is(sentinel) false")
	}
	if k := svcerr.KindOf(err); k != c.kind {
		problems = append(problems, fmt.Sprintf("kind %s", k))
	}
	var se *svcerr.Error
	if errors.As(err, &se) && se.Code != c.code {
		problems = append(problems, "code "+se.Code)
	}
	if !svcerr.PassedOn(err) {
		problems = append(problems, "not marked passed on")
	}
	if c.kind == svcerr.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		problems = append(problems, "not context.DeadlineExceeded")
	}
	return strings.Join(problems, "; ")
}

// A kind and code one service answers reach its caller's caller as the
// same errors.Is / KindOf / code, marked passed on, whichever transport
// each hop uses: HTTP over gRPC, and gRPC over HTTP (a quota's
// Retry-After too). A guard: it passed before this audit.
func TestKinds_SurviveTwoHops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	t.Run("http caller, gRPC last hop", func(t *testing.T) {
		srv := memory.NewServer()
		grpctest.StartApp(t, srv.Registry(), "last", "last-1")
		say := sayEndpoint(t, ctx, srv, "last")
		rt := httptransport.NewRouter()
		rt.Handle("GET /relay/{kind}/{code}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := say(r.Context(), "fail:"+r.PathValue("kind")+":"+r.PathValue("code"))
			httptransport.WriteError(w, fmt.Errorf("relay: %w", err))
		}))
		startHTTP(t, srv, "mid", rt)
		c, err := client.New(ctx, srv.Registry(), "mid", once...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, hc := range hopCases {
			err := c.Invoke(ctx, "GET", "/relay/"+string(hc.kind)+"/"+hc.code, nil, nil)
			if p := check(err, hc); p != "" {
				t.Errorf("%s/%s: %v: %s", hc.kind, hc.code, err, p)
			}
		}
	})

	t.Run("gRPC caller, HTTP last hop", func(t *testing.T) {
		srv := memory.NewServer()
		rt := httptransport.NewRouter()
		rt.Handle("GET /fail/{kind}/{code}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e := svcerr.New(svcerr.Kind(r.PathValue("kind")), r.PathValue("code"), "asked to fail")
			if e.Kind == svcerr.ResourceExhausted {
				e.RetryAfter = 2 * time.Second // a quota's: the caller must wait it out
			}
			httptransport.WriteError(w, e)
		}))
		startHTTP(t, srv, "last", rt)
		hc, err := client.New(ctx, srv.Registry(), "last", once...)
		if err != nil {
			t.Fatal(err)
		}
		defer hc.Close()
		relay := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			in, ok := req.(*wrapperspb.StringValue)
			if !ok || !strings.HasPrefix(in.GetValue(), "relay:") {
				return h(ctx, req)
			}
			kind, code, _ := strings.Cut(strings.TrimPrefix(in.GetValue(), "relay:"), ":")
			return nil, fmt.Errorf("relay: %w", hc.Invoke(ctx, "GET", "/fail/"+kind+"/"+code, nil, nil))
		}
		grpctest.StartAppServing(t, srv.Registry(), "mid", "mid-1", []grpcserver.Option{grpcserver.WithUnaryInterceptors(relay)})
		say := sayEndpoint(t, ctx, srv, "mid")
		for _, c := range hopCases {
			err := say(ctx, "relay:"+string(c.kind)+":"+c.code)
			if p := check(err, c); p != "" {
				t.Errorf("%s/%s: %v (status %v): %s", c.kind, c.code, err, grpctransport.Status(err).Code(), p)
			}
			var se *svcerr.Error
			if c.kind == svcerr.ResourceExhausted && (!errors.As(err, &se) || se.RetryAfter != 2*time.Second) {
				t.Errorf("%s: Retry-After lost across two hops: %v", c.code, err)
			}
		}
	})
}
