package registry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
)

// stoppable makes a Cache an sd.Instancer.
type stoppable struct{ *Cache }

func (stoppable) Stop() {}

func TestFollow_FromTheCurrentStateUntilStopThenUnsubscribed(t *testing.T) {
	c := NewCache()
	c.Update(sd.Event{Instances: []string{"a"}})
	seen := make(chan []string, 2)
	done := make(chan error, 1)
	go func() {
		done <- Follow(context.Background(), stoppable{c}, func(ev sd.Event) bool {
			seen <- ev.Instances
			return len(ev.Instances) == 2
		})
	}()
	select {
	case first := <-seen:
		if len(first) != 1 {
			t.Fatalf("first event %q, want the current state [a]", first)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Follow did not deliver the current state")
	}
	c.Update(sd.Event{Instances: []string{"a", "b"}}) // blocks until Follow takes it
	select {
	case err := <-done:
		if err != nil || len(<-seen) != 2 {
			t.Fatalf("Follow = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Follow did not return when f said stop")
	}
	// Unsubscribed: an update no longer waits for a reader.
	updated := make(chan struct{})
	go func() { c.Update(sd.Event{Instances: []string{"c"}}); close(updated) }()
	select {
	case <-updated:
	case <-time.After(30 * time.Second):
		t.Fatal("Follow left its channel subscribed")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Follow(ctx, stoppable{c}, func(sd.Event) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel = %v, want context.Canceled", err)
	}
}
