package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// A subscriber that reads the Registry (Instances, Status) as it handles
// each event — a test's watcher, a readiness gate — while other calls
// register: every Register returns. Changes used to be sent to
// subscribers under the server's one lock, so a subscriber waiting for
// that lock and a Register waiting for the subscriber hung each other.
func TestRegistry_SubscriberThatReadsTheRegistryDoesNotHangRegister(t *testing.T) {
	ctx := context.Background()
	// No deferred Close or Stop: after a hang they would hang the test
	// too; the goroutines of a failed run are left to the test binary.
	r := New()
	ins, err := r.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sd.Event) // unbuffered, as go-kit allows
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() { // owned by the test: ends when done is closed
		defer close(stopped)
		for {
			select {
			case <-ch:
				_ = r.Instances("svc")
				_ = r.Status()
			case <-done:
				return
			}
		}
	}()
	ins.Register(ch)
	registered := make(chan error, 1)
	go func() { // ends when the Registers return (or the test binary's timeout)
		for i := range 50 {
			inst := registry.Instance{ID: fmt.Sprintf("i%d", i), Name: "svc", Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", 1000+i)}}
			if err := r.Register(ctx, inst); err != nil {
				registered <- err
				return
			}
		}
		registered <- nil
	}()
	select {
	case err := <-registered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("50 Registers did not return in 20 s while a subscriber read the Registry: hung")
	}
	// Drain while Deregister runs, as the Cache contract asks.
	go func() { // ends when ch is closed below
		for range ch {
		}
	}()
	close(done)
	<-stopped
	ins.Deregister(ch)
	close(ch)
	ins.Stop()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
