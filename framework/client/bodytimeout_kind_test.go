package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// A call whose every attempt got a Warren server's 408 body_timeout (the
// request body did not reach the instance in time: its path lost it) is
// of kind Unavailable, a failure of the call's transport, as a call no
// instance answered is (ErrUnreachable). Before, KindForStatus(408) was
// Internal: the caller read "the service has a bug", and a service
// passing the error on answered its own caller 500 "internal error"
// (either answer, 500 or now 503, counts against the passing instance in
// its caller's outlier detection, as any 5xx does). It is not the
// caller's deadline either: errors.Is(err, context.DeadlineExceeded) is
// false. A service that returns it answers 503 body_timeout, passed on,
// with its message, and its caller does not replay the plain POST.
func TestCall_BodyTimeoutOnEveryAttemptIsUnavailableNotInternal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Both instances sit behind paths that lose request bodies, and wait
	// 50 ms between body reads.
	a := startCharger(t, "a-late", httptransport.WithBodyTimeouts(2*time.Second, 50*time.Millisecond))
	b := startCharger(t, "b-late", httptransport.WithBodyTimeouts(2*time.Second, 50*time.Millisecond))
	pa, pb := startStalledPath(t, a.url), startStalledPath(t, b.url)
	dep := must(NewFromInstancer(sd.FixedInstancer{
		instanceAt("a-late", pa.ln.Addr().String()).String(),
		instanceAt("b-late", pb.ln.Addr().String()).String(),
	}, "payment", WithBalancer(&byID{}), WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond), retry.WithoutHedging())))
	t.Cleanup(func() { dep.Close() })

	_, err := Call[echoReq, echoResp](ctx, dep, http.MethodPost, "/charge", echoReq{N: 1})
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != http.StatusRequestTimeout || ce.Code != httptransport.CodeBodyTimeout {
		t.Fatalf("POST /charge: err = %v; want a 408 %s", err, httptransport.CodeBodyTimeout)
	}
	var se *svcerr.Error
	if k := svcerr.KindOf(err); k != svcerr.Unavailable || !errors.As(err, &se) || se.Kind != svcerr.Unavailable || se.Code != httptransport.CodeBodyTimeout {
		t.Fatalf("KindOf = %s, *svcerr.Error %+v; want kind %s, code %s", k, se, svcerr.Unavailable, httptransport.CodeBodyTimeout)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v matches context.DeadlineExceeded; the caller's deadline did not pass", err)
	}
	if !Unprocessed(err) {
		t.Fatalf("Unprocessed(%v) = false; no method ran", err)
	}
	var re *retry.Error
	if !errors.As(err, &re) || len(re.Attempts) < 2 {
		t.Fatalf("err = %v; want several attempts", err)
	}
	on := map[string]int{}
	for i, ae := range re.Attempts {
		if !errors.As(ae, &ce) || ce.Status != http.StatusRequestTimeout || ce.Code != httptransport.CodeBodyTimeout {
			t.Fatalf("attempt #%d: %v; want a 408 %s", i+1, ae, httptransport.CodeBodyTimeout)
		}
		on[ce.ID]++
	}
	if on["a-late"] == 0 || on["b-late"] == 0 {
		t.Fatalf("attempts by instance %v; want both tried", on)
	}
	if ra, rb := a.ran.Load(), b.ran.Load(); ra != 0 || rb != 0 {
		t.Fatalf("the method ran %d and %d times; want never", ra, rb)
	}

	// A Warren service in the middle returns the error as it came.
	var effects atomic.Int64
	pay := func(ctx context.Context, req any) (any, error) {
		effects.Add(1)
		return Call[echoReq, echoResp](ctx, dep, http.MethodPost, "/charge", req.(echoReq))
	}
	rt := httptransport.NewRouter()
	rt.Handle("POST /pay", httptransport.NewServer(pay, httptransport.DecodeJSON[echoReq](), httptransport.EncodeJSON, log.NewNopLogger()))
	middle := httptest.NewServer(httptransport.Handler(rt, log.NewNopLogger(), 0))
	t.Cleanup(middle.Close)

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, middle.URL+"/pay", strings.NewReader(`{"n":2}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb httptransport.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || eb.Code != httptransport.CodeBodyTimeout || !eb.PassedOn ||
		!strings.Contains(eb.Error, httptransport.ErrBodyTimeout.Error()) {
		t.Fatalf("the middle service answered %d %+v; want 503 %s, passed on, saying %q",
			resp.StatusCode, eb, httptransport.CodeBodyTimeout, httptransport.ErrBodyTimeout)
	}

	// Its caller, a Warren client: the same kind, and a plain POST the
	// middle service may have acted on is not sent again.
	outer := must(NewFromInstancer(sd.FixedInstancer{instanceAt("m-1", middle.Listener.Addr().String()).String()}, "checkout",
		WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond), retry.WithoutHedging())))
	t.Cleanup(func() { outer.Close() })
	before := effects.Load()
	_, err = Call[echoReq, echoResp](ctx, outer, http.MethodPost, "/pay", echoReq{N: 3})
	if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable || !ce.PassedOn || ce.Code != httptransport.CodeBodyTimeout ||
		svcerr.KindOf(err) != svcerr.Unavailable {
		t.Fatalf("POST /pay: err = %v (kind %s); want the middle's 503 %s, passed on, of kind %s",
			err, svcerr.KindOf(err), httptransport.CodeBodyTimeout, svcerr.Unavailable)
	}
	if n := effects.Load() - before; n != 1 {
		t.Fatalf("the middle service ran %d times for one POST; want once", n)
	}
}
