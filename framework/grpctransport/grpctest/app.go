package grpctest

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// App is a running App serving Echo over gRPC (and HTTP health), for
// tests of discovery-backed gRPC callers.
type App struct {
	*app.App
	Echo *Echo
	stop context.CancelFunc
	done chan error
	once sync.Once
}

// StartApp runs an App named svc with instance ID id, registered in reg
// (which the App closes when it exits: give each App its own), serving
// Echo answering with id on a free loopback port; opts come after the
// test defaults (no signals, no grace, a generous self-check). It waits
// until the App is ready and stops it when the test ends.
func StartApp(t testing.TB, reg registry.Registry, svc, id string, opts ...app.Option) *App {
	t.Helper()
	return StartAppServing(t, reg, svc, id, nil, opts...)
}

// StartAppServing is StartApp with options for its gRPC server (e.g.
// grpcserver.WithTLS, which makes it publish grpcs://).
func StartAppServing(t testing.TB, reg registry.Registry, svc, id string, serverOpts []grpcserver.Option, opts ...app.Option) *App {
	t.Helper()
	a := &App{done: make(chan error, 1)}
	gs, err := grpcserver.New(func(g *grpc.Server) { a.Echo = Register(g, id) }, append([]grpcserver.Option{grpcserver.WithAddr("127.0.0.1:0")}, serverOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	a.App, err = app.New(svc, http.NotFoundHandler(), reg, append([]app.Option{app.WithServer(gs), app.WithListen("127.0.0.1:0"),
		app.WithID(id), app.WithSignals(false), app.WithGracePeriod(0), app.WithSelfCheckTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	go func() { a.done <- a.Run(ctx) }() // ends when Shutdown cancels ctx
	select {
	case <-a.Ready():
	case err := <-a.done:
		t.Fatalf("%s: Run returned before ready: %v", id, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready within 60s", id)
	}
	t.Cleanup(func() { a.Shutdown() })
	return a
}

// Shutdown stops the App (withdraw, grace, drain, release) and returns
// Run's error; it waits at most 60s. Calls after the first return nil.
func (a *App) Shutdown() error {
	var err error
	a.once.Do(func() {
		a.stop()
		select {
		case err = <-a.done:
		case <-time.After(60 * time.Second):
			err = context.DeadlineExceeded
		}
	})
	return err
}

// Stop begins the shutdown without waiting (Done reports its end).
func (a *App) Stop() { a.stop() }

// Done returns Run's result once it has returned; use after Stop.
func (a *App) Done() <-chan error { return a.done }
