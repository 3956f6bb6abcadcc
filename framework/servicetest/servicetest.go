// Package servicetest runs a service the way production does — a real
// lifecycle (app.Run) registered in a real etcd — inside a test, so a test
// can call it through its generated client and discovery:
//
//	func TestMain(m *testing.M) { servicetest.Main(m) } // one etcd per package
//
//	func TestHello(t *testing.T) {
//		d := servicetest.Start(t, payment.ServiceName, handler)
//		c, err := payment.NewClient(ctx, d)
//		...
//	}
//
// Each instance listens on 127.0.0.1:0 with no propagation grace, and is
// stopped (deregistered, drained, registry closed) when the test ends; a
// lifecycle that does not stop cleanly fails the test.
package servicetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// startTimeout bounds how long Start waits for an instance to register.
const startTimeout = 30 * time.Second

// shared is the package's etcd when the tests run under Main.
var shared atomic.Pointer[embedetcd.Server]

// prefixes numbers the key prefix of each Start, so tests sharing one etcd
// never see each other's instances.
var prefixes atomic.Int64

// Main starts one embedded etcd for the test binary, runs the tests and
// stops it. Call it from TestMain; it does not return.
func Main(m *testing.M) {
	srv, err := embedetcd.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "servicetest: start embedded etcd: %v\n", err)
		os.Exit(1)
	}
	shared.Store(srv)
	code := m.Run()
	shared.Store(nil)
	srv.Close()
	os.Exit(code)
}

// Etcd returns the etcd endpoints tests use: the shared server under Main,
// or one started for this test and closed when it ends.
func Etcd(t testing.TB) []string {
	t.Helper()
	if srv := shared.Load(); srv != nil {
		return srv.Endpoints()
	}
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatalf("servicetest: start embedded etcd: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Endpoints()
}

// Start runs handler as service name until the test ends and returns the
// discovery in which it is registered. opts are added to (and override)
// the test defaults: listen on 127.0.0.1:0, no grace period, no signal
// handling.
func Start(t testing.TB, name string, handler http.Handler, opts ...app.Option) registry.Discovery {
	t.Helper()
	endpoints := Etcd(t)
	prefix := fmt.Sprintf("servicetest-%d-%d", os.Getpid(), prefixes.Add(1))
	open := func() registry.Registry {
		t.Helper()
		r, err := etcd.New(context.Background(), etcd.WithEndpoints(endpoints...), etcd.WithPrefix(prefix))
		if err != nil {
			t.Fatalf("servicetest: etcd registry: %v", err)
		}
		return r
	}

	// The discovery side is the client's; closed last, after the instance.
	disc := open()
	t.Cleanup(func() { disc.Close() })

	base := []app.Option{
		app.WithListen("127.0.0.1:0"),
		app.WithGracePeriod(0),
		app.WithDrainTimeout(5 * time.Second),
		app.WithSignals(false),
	}
	a, err := app.New(name, handler, open(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("servicetest: %v", err)
	}
	Run(t, a)
	return disc
}

// Run runs a built App until the test ends: it returns once the instance
// is registered and ready, and at cleanup cancels it and fails the test
// unless it stops cleanly in time.
func Run(t testing.TB, a *app.App) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("servicetest: %s did not stop cleanly: %v", a.Instance().Name, err)
			}
		case <-time.After(startTimeout):
			t.Errorf("servicetest: %s still running %s after the test ended", a.Instance().Name, startTimeout)
		}
	})

	select {
	case <-a.Ready():
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("servicetest: app stopped before it was ready: %v", err)
	case <-time.After(startTimeout):
		t.Fatalf("servicetest: app not registered after %s", startTimeout)
	}
}

// CheckSettings binds the service's settings structs as its generated main
// does — flags beside the framework's, package config — and fails t if a
// field cannot be a flag: a type flags cannot carry, or a name the
// framework's flags already use. So a field the service could not start
// with fails `go test`, not the deploy. Flags of the registry backends and
// of the gRPC transport are not bound here; Validate is not run (the
// service's own tests check its values).
func CheckSettings(t testing.TB, service string, ptrs ...any) {
	t.Helper()
	_, err := config.ParseWith(service, "test", nil, []string{"--help"}, io.Discard, config.ParseOptions{Settings: ptrs})
	if !errors.Is(err, config.ErrHelp) {
		t.Fatalf("servicetest: the settings cannot be flags of %s: %v", service, err)
	}
}
