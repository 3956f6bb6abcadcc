package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/retry"
)

// A method that reads the request body itself (a go-kit decoder that
// hands it r.Body: a streaming upload) may have acted on what arrived
// before the body stalled. Its 408 carries body_timeout_in_handler, not
// body_timeout, and a plain POST is not sent again (review s58 F1: with
// every ErrBodyTimeout answered body_timeout, the client re-sent the
// POST and the method ran on both instances).
func TestCall_BodyTimeoutWhileTheMethodReadsIsNotRetriedForAPost(t *testing.T) {
	var ran atomic.Int64
	upload := func(_ context.Context, req any) (any, error) {
		ran.Add(1) // the method acts, then reads the rest of the body
		if _, err := io.Copy(io.Discard, req.(io.Reader)); err != nil {
			return nil, fmt.Errorf("store upload: %w", err)
		}
		return echoResp{From: "a-late"}, nil
	}
	rawBody := func(_ context.Context, r *http.Request) (any, error) { return r.Body, nil }
	rt := httptransport.NewRouter()
	rt.Handle("POST /charge", httptransport.NewServer(upload, rawBody, httptransport.EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(httptransport.Handler(rt, log.NewNopLogger(), 0, httptransport.WithBodyTimeouts(2*time.Second, 50*time.Millisecond)))
	t.Cleanup(srv.Close)
	path := startStalledPath(t, srv.Listener.Addr().String())
	ok := startCharger(t, "b-ok")
	c := must(NewFromInstancer(sd.FixedInstancer{instanceAt("a-late", path.ln.Addr().String()).String(), ok.inst.String()}, "payment",
		WithBalancer(&byID{}), WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond), retry.WithoutHedging())))
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := Call[echoReq, echoResp](ctx, c, http.MethodPost, "/charge", echoReq{N: 1})
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != http.StatusRequestTimeout || ce.Code != httptransport.CodeBodyTimeoutInHandler {
		t.Fatalf("POST /charge: err = %v; want a-late's 408 with code %q", err, httptransport.CodeBodyTimeoutInHandler)
	}
	if a, b := ran.Load(), ok.ran.Load(); a != 1 || b != 0 {
		t.Fatalf("the method ran %d times on a-late and %d on b-ok; want 1 and 0 (not sent again)", a, b)
	}
}
