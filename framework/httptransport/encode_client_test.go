package httptransport_test

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

type averageReq struct {
	Values []float64 `json:"values"`
}

type averageResp struct {
	Mean  float64 `json:"mean"`
	Count int     `json:"count"`
}

// The generated client's call (client.NewEndpoint) of a method whose
// response cannot be encoded returns an error of kind Internal, not the
// zero response with err == nil it got from a 200 (j53c finding 1).
func TestEncodeJSON_ClientGetsAnErrorNotAZeroResponse(t *testing.T) {
	rt := httptransport.NewRouter()
	rt.Handle("POST /average", httptransport.NewServer(func(_ context.Context, req any) (any, error) {
		vs := req.(averageReq).Values
		sum := 0.0
		for _, v := range vs {
			sum += v
		}
		return averageResp{Mean: sum / float64(len(vs)), Count: len(vs)}, nil
	}, httptransport.DecodeJSON[averageReq](), httptransport.EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(httptransport.Handler(rt, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	inst := registry.Instance{ID: registry.DefaultID("avg", host, p), Name: "avg", Endpoints: []string{registry.EndpointURL("http", host, p)}}
	c, err := client.NewFromInstancer(sd.FixedInstancer([]string{inst.String()}), "avg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	average := client.NewEndpoint[averageReq, averageResp](c, "POST", func(averageReq) string { return "/average" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := average(ctx, averageReq{Values: []float64{1, 2}})
	if err != nil || resp.(averageResp) != (averageResp{Mean: 1.5, Count: 2}) {
		t.Fatalf("Average(1, 2) = %v, %v; want {1.5 2}", resp, err)
	}
	for _, vs := range [][]float64{{}, {math.MaxFloat64, math.MaxFloat64}} { // NaN, +Inf
		resp, err := average(ctx, averageReq{Values: vs})
		var ce *client.Error
		if err == nil || svcerr.KindOf(err) != svcerr.Internal || !errors.As(err, &ce) || ce.Status != http.StatusInternalServerError {
			t.Fatalf("Average(%v) = %v, err %v; want a 500 internal error", vs, resp, err)
		}
	}
}
