package consul

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
)

// A process following more services than the agent lets one client
// address hold connections gets, for the services refused, an error that
// names the agent's limit and what to do — not only Consul's "Your IP is
// issuing too many concurrent connections" (report j50d: warren watch of
// 300 services through a default agent never showed 8 of them).
func TestInstancer_AgentConnectionLimitIsExplained(t *testing.T) {
	a := ownAgent(t, consultest.WithExtraConfig(`limits { http_max_conns_per_client = 6 }`))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := New(ctx, WithAddress(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	errs := make(chan error, 64)
	for i := range 10 {
		in, err := r.Instancer(ctx, fmt.Sprintf("limited%d", i))
		if err != nil {
			t.Fatal(err)
		}
		defer in.Stop()
		ch := make(chan sd.Event, 16)
		in.Register(ch)
		defer close(ch) // after Deregister: ends the reader
		defer in.Deregister(ch)
		go func() {
			for ev := range ch {
				if ev.Err != nil {
					select {
					case errs <- ev.Err:
					default:
					}
				}
			}
		}()
	}
	// The agent answers 429 on a connection it then closes; net/http may
	// read that as a broken connection instead ("readLoopPeekFailLocked"),
	// so look through the errors for the 429 explained.
	var seen []string
	for {
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), "http_max_conns_per_client") {
				return
			}
			if len(seen) < 5 {
				seen = append(seen, err.Error())
			}
		case <-ctx.Done():
			t.Fatalf("10 services followed through an agent that allows 6 connections: no error naming limits.http_max_conns_per_client within 60s; first errors: %q", seen)
		}
	}
}
