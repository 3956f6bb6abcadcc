package grpctransport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// grpc-go's own RESOURCE_EXHAUSTED for a message over a size limit is
// about the request's size, not a quota: an HTTP service passing it on
// from its gRPC downstream answered 429 Too Many Requests, which tells
// its caller to come back later with the same request. It answers 413
// too_large, from whichever side's limit the message met: the
// downstream's receive limit (1 KiB here), the caller's receive limit
// (512 B) or its send limit (4 KiB). A quota stays 429 and an overload
// 503.
func TestPassedOn_MessageOverTheSizeLimitIsHTTP413(t *testing.T) {
	s, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, "a") },
		grpcserver.WithAddr("127.0.0.1:0"), grpcserver.WithServerOptions(grpc.MaxRecvMsgSize(1024)))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "echo", Nonce: "a", Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve() //nolint:errcheck // ends with Close below
	t.Cleanup(func() { s.Close() })
	inst := registry.Instance{ID: "a", Name: "echo", Endpoints: []string{s.Scheme() + "://" + addr.String()}}.String()

	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{inst}, "echo",
		grpcclient.WithDialOptions(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(512), grpc.MaxCallSendMsgSize(4096))),
		grpcclient.WithClientOptions(client.WithRetry(retry.WithMaxAttempts(1))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	say := grpcclient.NewEndpoint(c, grpctest.SayMethod,
		func(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil },
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{})

	type sayReq struct {
		Text string `json:"text"`
	}
	rt := httptransport.NewRouter()
	rt.Handle("POST /say", httptransport.NewServer(func(ctx context.Context, req any) (any, error) {
		return say(ctx, req.(sayReq).Text)
	}, httptransport.DecodeJSON[sayReq](), httptransport.EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(httptransport.Handler(rt, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 30 * time.Second}

	for _, tc := range []struct {
		name, text string
		status     int
		code       string
	}{
		{"over the downstream's receive limit", strings.Repeat("x", 2000), http.StatusRequestEntityTooLarge, "too_large"},
		{"response over the caller's receive limit", strings.Repeat("x", 800), http.StatusRequestEntityTooLarge, "too_large"},
		{"over the caller's send limit", strings.Repeat("x", 5000), http.StatusRequestEntityTooLarge, "too_large"},
		{"a quota", "fail:resource_exhausted:quota_used", http.StatusTooManyRequests, "quota_used"},
		{"an overload", "fail:unavailable:overloaded", http.StatusServiceUnavailable, "overloaded"},
		{"small enough", "hi", http.StatusOK, ""},
	} {
		body, _ := json.Marshal(sayReq{Text: tc.text})
		resp, err := hc.Post(srv.URL+"/say", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var eb httptransport.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != tc.status || eb.Code != tc.code || tc.code != "" && !eb.PassedOn {
			t.Errorf("%s: %d %+v; want %d, code %q, passed on", tc.name, resp.StatusCode, eb, tc.status, tc.code)
		}
	}
}
