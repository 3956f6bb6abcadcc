package fallback

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// A Cached fallback's answer for a key is the service's last good answer
// for it. Once the service has answered otherwise for the key — the user
// was deleted (404) or the caller may no longer see it (403) — there is
// no last good answer: an outage that follows must not bring the deleted
// or forbidden record back from the cache as if the service had just
// returned it. Real server, real client: 200, then 404 (or 403), then the
// server killed.
func TestCached_BusinessAnswerDropsTheCachedAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"not found", http.StatusNotFound, `{"error":"user 7 not found","code":"user_not_found"}`},
		{"denied", http.StatusForbidden, `{"error":"not yours","code":"permission_denied"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var answer atomic.Int32 // 0: the user; 1: tc's answer
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if answer.Load() == 1 {
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte(tc.body))
					return
				}
				_, _ = w.Write([]byte(`{"ID":"7","Name":"Ann"}`))
			})}
			served := make(chan struct{})
			go func() { defer close(served); _ = srv.Serve(ln) }()
			kill := func() { _ = srv.Close(); <-served }
			defer kill()

			port := ln.Addr().(*net.TCPAddr).Port
			reg := memory.New()
			defer reg.Close()
			inst := registry.Instance{ID: registry.DefaultID("user", "127.0.0.1", port), Name: "user",
				Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
			if err := reg.Register(ctx, inst); err != nil {
				t.Fatal(err)
			}
			users, err := client.New(ctx, reg, "user", client.WithoutOutlier())
			if err != nil {
				t.Fatal(err)
			}
			defer users.Close()
			get := func(ctx context.Context, r req) (resp, error) {
				return client.Call[req, resp](ctx, users, "GET", "/users/"+r.ID, r, client.Method("Get"))
			}
			cached := NewCached(NewCache[string, resp](10, time.Hour), func(r req) string { return r.ID }, nil).Wrap(get)

			if got, err := cached(ctx, req{ID: "7"}); err != nil || got.Name != "Ann" {
				t.Fatalf("up: %+v, %v; want the user", got, err)
			}
			answer.Store(1)
			_, err = cached(ctx, req{ID: "7"})
			if err == nil || Degradable(err) {
				t.Fatalf("after the change: err %v, want the service's business answer", err)
			}
			kill()
			got, err := cached(ctx, req{ID: "7"})
			if err == nil {
				t.Fatalf("down after a %d: served %+v from the cache; want the failure (the service's last word was that it is gone)", tc.status, got)
			}
			if !Degradable(err) || svcerr.KindOf(err) != svcerr.Unavailable {
				t.Errorf("down: err %v (kind %s), want the outage's error", err, svcerr.KindOf(err))
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("down: err %v is a cancel", err)
			}
		})
	}
}
