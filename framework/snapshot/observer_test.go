package snapshot

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// answersAtDeregister is a registry that answers just as the snapshot
// layer leaves it: its DeregisterDelta first sends a set, which the
// Instancer's reader is still there to take.
type answersAtDeregister struct{ *registry.Cache }

func (a answersAtDeregister) DeregisterDelta(ch chan<- registry.Delta) {
	a.Update(sd.Event{Instances: []string{inst(2).String()}})
	a.Cache.DeregisterDelta(ch)
}

func (answersAtDeregister) Stop() {}

// The stale observer hears false once after its true, even when the
// registry answers while Stop is under way, so a counting observer shared
// by several Instancers of a service (metrics' discovery_stale) keeps the
// others' count. Before, Stop told false and the answer handled after it
// told false again.
func TestInstancer_StaleObserverHearsFalseOnceWhenTheRegistryAnswersDuringStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.json")
	writeSnapshot(t, path, inst(1).String())
	var mu sync.Mutex
	var calls []bool
	announced := make(chan struct{}, 1)
	obs := func(_ string, stale bool) {
		mu.Lock()
		calls = append(calls, stale)
		mu.Unlock()
		if stale {
			announced <- struct{}{}
		}
	}
	s := must(New(answersAtDeregister{registry.NewCache()}, path, WithConnectWait(time.Millisecond), WithStaleObserver(obs)))
	select {
	case <-announced:
	case <-time.After(10 * time.Second):
		s.Stop()
		t.Fatal("the snapshot was not announced within 10s")
	}
	s.Stop() // returns after the reader handled the answer
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(calls, []bool{true, false}) {
		t.Fatalf("stale observer heard %v, want [true false]", calls)
	}
}
