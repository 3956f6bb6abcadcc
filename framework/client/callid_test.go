package client

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/requestid"
)

// A call made through Do or DoMethod (the gRPC and generated clients)
// with no request ID in its context gets one of its own, which every
// attempt carries, the refused first one and its retry; a call made with
// an ID keeps it (audit o6 R2).
func TestDo_AttemptsOfACallWithoutAnIDShareOne(t *testing.T) {
	b1, b2 := startBackend(t, "", nil), startBackend(t, "", nil) // a refused attempt is retried, on either
	var mu sync.Mutex
	var ids []string
	c := newClient(t, newRegistry(t, b1.inst, b2.inst), WithInstanceFactory(func(registry.Instance) (endpoint.Endpoint, io.Closer, error) {
		return func(ctx context.Context, _ any) (any, error) {
			id, _ := requestid.FromContext(ctx)
			mu.Lock()
			defer mu.Unlock()
			ids = append(ids, id)
			if len(ids)%2 == 1 {
				return nil, fmt.Errorf("dial: %w", syscall.ECONNREFUSED) // never sent: retried
			}
			return "ok", nil
		}, nil, nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	defer cancel()
	for _, tc := range []struct {
		name string
		do   func(context.Context) (any, error)
		ctx  context.Context
		want string
	}{
		{"Do", func(ctx context.Context) (any, error) { return c.Do(ctx, nil, true) }, ctx, ""},
		{"DoMethod", func(ctx context.Context) (any, error) { return c.DoMethod(ctx, "Get", nil, true) }, ctx, ""},
		{"DoMethod with an ID", func(ctx context.Context) (any, error) { return c.DoMethod(ctx, "Get", nil, true) }, requestid.NewContext(ctx, "req-9"), "req-9"},
	} {
		mu.Lock()
		ids = nil
		mu.Unlock()
		if _, err := tc.do(tc.ctx); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		mu.Lock()
		got := append([]string(nil), ids...)
		mu.Unlock()
		if len(got) != 2 || got[0] == "" || got[0] != got[1] || (tc.want != "" && got[0] != tc.want) {
			t.Errorf("%s: attempts carried IDs %q; want one ID twice (%q if set)", tc.name, got, tc.want)
		}
	}
}
