package client

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/registry"

	"github.com/warren-mesh/warren/internal/downstream"
)

// A call marks its wait on the serving request's record (put in the
// context by the server's load shedder), so the shedder leaves it out of
// its latency signal (report j50a 1); Invoke and Do both.
func TestClient_CallsMarkTheirWaitForTheServingInstancesShedder(t *testing.T) {
	b := startBackend(t, "", nil)
	b.delay.Store(int64(50 * time.Millisecond))
	c := newClient(t, newRegistry(t, b.inst))
	ctx, w := downstream.With(context.Background(), time.Now)
	ctx, cancel := context.WithTimeout(ctx, callDeadline)
	defer cancel()
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/echo", echoReq{}); err != nil {
		t.Fatal(err)
	}
	if got := w.Total(time.Now()); got < 50*time.Millisecond {
		t.Fatalf("Invoke: the record holds %v, want at least the backend's 50ms", got)
	}
	ctx2, w2 := downstream.With(context.Background(), time.Now)
	fc := newClient(t, newRegistry(t, b.inst), WithInstanceFactory(func(registry.Instance) (endpoint.Endpoint, io.Closer, error) {
		return func(ctx context.Context, _ any) (any, error) {
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
			return nil, nil
		}, nil, nil
	}))
	if _, err := fc.Do(ctx2, nil, true); err != nil {
		t.Fatal(err)
	}
	if got := w2.Total(time.Now()); got < 50*time.Millisecond {
		t.Fatalf("Do: the record holds %v, want at least the endpoint's 50ms", got)
	}
}
