package requestid_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// Every attempt of one call made with a request ID carries that ID: the
// first, refused (overloaded), and its retry. A guard (audit o6): it
// passed before. A call made with no ID in its context (a background
// job's) sends none, and each attempt's server makes its own: see the
// audit's report.
func TestRetry_AttemptsOfOneCallCarryItsID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := memory.NewServer()
	var calls atomic.Int32
	var ids seen
	rt := httptransport.NewRouter()
	rt.Handle("GET /x", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids.add(r.Context())
		if calls.Add(1) == 1 {
			httptransport.WriteError(w, svcerr.ErrOverloaded) // not taken on: retried
			return
		}
		w.Write([]byte(`{}`))
	}))
	a, err := app.New("web", rt, srv.Registry(), app.WithListen("127.0.0.1:0"), app.WithID("web-1"),
		app.WithSignals(false), app.WithGracePeriod(0), app.WithSelfCheckTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }() // ends when stop runs
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("web did not stop within 30s")
		}
	}()
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("web not ready")
	}
	c, err := client.New(ctx, srv.Registry(), "web")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Invoke(requestid.NewContext(ctx, "req-7"), "GET", "/x", nil, nil); err != nil {
		t.Fatal(err)
	}
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if len(ids.ids) != 2 || ids.ids[0] != "req-7" || ids.ids[1] != "req-7" {
		t.Errorf("attempts carried IDs %q; want req-7 twice", ids.ids)
	}
}
