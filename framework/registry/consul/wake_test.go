package consul

import (
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// An instancer sleeping out a long backoff after the agent went away reads
// it again as soon as the Registry's registrar has reached it and the
// servers list the registration — not when its own sleep ends (report
// j60b F1: an instancer that slept on through an agent restart served the
// closed addresses of instances withdrawn meanwhile; with two instances a
// rolling restart lost 127 calls).
func TestInstancer_WakesWhenTheRegistrarReachesTheAgentAgain(t *testing.T) {
	a := ownAgent(t)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A failed query sleeps 20–40 s; the registrar's heartbeat retries
	// within its interval (TTL/3) whatever the backoff.
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL), WithRetryBackoff(40*time.Second, 40*time.Second), WithRequestTimeout(time.Second))
	if err := r.Register(ctxT(t, 30*time.Second), testInstance("wake-1", "wake-svc", "http", "127.0.0.1", "8091")); err != nil {
		t.Fatal(err)
	}
	rec := registrytest.Record(t, newInstancer(t, r, "wake-svc"))
	rec.WaitFor(t, 10*time.Second, "wake-1 listed", registrytest.Has("wake-1"))
	a.Kill()
	rec.WaitFor(t, 10*time.Second, "an error event", func(ev sd.Event) bool { return ev.Err != nil })
	from := len(rec.Events())
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Well inside the 20 s the instancer's sleep lasts at least.
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := rec.Events()
		for _, ev := range evs[from:] {
			if ev.Err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event without an error within 10s of the agent's return; events since the outage: %d", len(evs)-from)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Without a registrar the first query of the Registry to get through
// wakes the rest: here a new instancer's first read, after the agent's
// return, wakes one that failed during the outage and sleeps 20–40 s.
func TestInstancer_WakesWhenAnotherQueryGetsThrough(t *testing.T) {
	a := ownAgent(t)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, a.Addr(), WithRetryBackoff(40*time.Second, 40*time.Second), WithRequestTimeout(time.Second))
	rec := registrytest.Record(t, newInstancer(t, r, "wake-a"))
	rec.WaitFor(t, 10*time.Second, "a first event", func(ev sd.Event) bool { return ev.Err == nil })
	a.Kill()
	rec.WaitFor(t, 10*time.Second, "an error event", func(ev sd.Event) bool { return ev.Err != nil })
	from := len(rec.Events())
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	newInstancer(t, r, "wake-b") // returns once its first query answered
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := rec.Events()
		for _, ev := range evs[from:] {
			if ev.Err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("wake-a: no event without an error within 10s of another instancer's first read; events since the outage: %d", len(evs)-from)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
