package client

import (
	"context"
	"errors"
	"testing"

	"github.com/warren-mesh/warren/framework/climit"
	"github.com/warren-mesh/warren/framework/fallback"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// A call the client's concurrency limit refuses fails at once with kind
// unavailable and code client_limited (docs/overload.md, "Adaptive
// concurrency limit per service"; docs/client.md, Retries): a service
// passing it on answers 503, not 500, and a fallback answers it. Guards
// climit.ErrLimited's kind and code; no other test fails if its kind is
// changed to Internal.
func TestGuard_LimitedCallIsUnavailableWithCodeClientLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	defer cancel()
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst), WithConcurrencyLimit(climit.WithLimits(1, 1, 1)))
	tok, ok := c.limiter.Acquire() // the one call the limit allows
	if !ok {
		t.Fatal("limit of 1 refused the first call")
	}
	defer tok.Release(climit.Ignored)

	_, err := Call[echoReq, echoResp](ctx, c, "GET", "/echo", echoReq{})
	if !errors.Is(err, climit.ErrLimited) {
		t.Fatalf("call over the limit: err = %v, want climit.ErrLimited", err)
	}
	if k := svcerr.KindOf(err); k != svcerr.Unavailable {
		t.Fatalf("kind of a limited call = %v, want %v", k, svcerr.Unavailable)
	}
	var se *svcerr.Error
	if !errors.As(err, &se) || se.Code != "client_limited" {
		t.Fatalf("limited call's svcerr = %+v, want code client_limited", se)
	}
	if n := b.hits.Load(); n != 0 {
		t.Fatalf("a refused call reached the instance %d times, want 0", n)
	}
	if !fallback.Degradable(err) {
		t.Fatal("a fallback does not cover a call refused by the client's own limit")
	}
}
