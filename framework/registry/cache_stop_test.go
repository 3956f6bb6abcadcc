package registry

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
)

// A subscriber that calls Deregister or Stop from its handler while the
// next change waits for it: the call ends that send and returns, the
// changes go on (to the others, for Deregister), and the subscriber gets
// nothing more. Both used to wait for the lock the waiting send held:
// the handler and every later change hung (review s58-r2 F2). The
// handler acts once its delta probe has the third state: the cache
// serves delta subscribers first, so that change is then waiting for
// the handler, every time.
func TestCache_DeregisterOrStopFromTheHandlerEndsTheSendWaitingForIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(*Cache, chan<- sd.Event)
		// The state after the changes: Stop keeps the newest one a
		// subscriber (the probe) got and ignores the change after it.
		want []string
	}{
		{"Deregister", func(c *Cache, ch chan<- sd.Event) { c.Deregister(ch) }, []string{"x1", "x2", "x3"}},
		{"Stop", func(c *Cache, _ chan<- sd.Event) { c.Stop() }, []string{"x1", "x2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache()
			c.Update(sd.Event{Instances: []string{}})
			probe := make(chan Delta, 8)
			c.RegisterDelta(probe)
			recvWithin(t, probe, "the probe's first state")
			ch := make(chan sd.Event) // unbuffered, as go-kit allows
			acted, late := make(chan struct{}), make(chan sd.Event, 8)
			done, ended := make(chan struct{}), make(chan struct{})
			go func() { // the handler; ends when done is closed
				defer close(ended)
				n := 0
				for {
					select {
					case ev := <-ch:
						if n++; n > 2 {
							late <- ev
							continue
						}
						if n == 2 { // x1; x2 is next
							if !probeAdds(probe, "x2") {
								t.Error("the probe never got x2")
							}
							tc.act(c, ch)
							close(acted)
						}
					case <-done:
						return
					}
				}
			}()
			c.Register(ch)
			updated := make(chan struct{})
			go func() { // ends after three Updates (or the test binary's timeout)
				defer close(updated)
				c.Update(sd.Event{Instances: []string{"x1"}})
				c.Update(sd.Event{Instances: []string{"x1", "x2"}})
				c.Update(sd.Event{Instances: []string{"x1", "x2", "x3"}})
			}()
			for what, ch := range map[string]chan struct{}{tc.name + " from the handler": acted, "the Updates after it": updated} {
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s did not return within 10 s: hung", what)
				}
			}
			close(done)
			<-ended
			if len(late) > 0 {
				t.Errorf("the subscriber got %d events after its %s returned", len(late), tc.name)
			}
			if got := c.State().Instances; !slices.Equal(got, tc.want) {
				t.Errorf("state %v, want %v", got, tc.want)
			}
		})
	}
}

// probeAdds reads deltas until one adds s; false after 10 s.
func probeAdds(probe <-chan Delta, s string) bool {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case d := <-probe:
			if slices.Contains(d.Added, s) {
				return true
			}
		case <-timeout.C:
			return false
		}
	}
}

// A change that Stop ends before any subscriber got it is not the state:
// State, and a Register after Stop, give the last one a subscriber got,
// and later changes are ignored. Without putting it back, State after
// Stop was newer than anything its subscribers had seen (review s58-r2
// F7).
func TestCache_StopDropsAChangeNoSubscriberGot(t *testing.T) {
	boom := errors.New("registry unreachable")
	for _, tc := range []struct {
		name   string
		change func(*Cache)
	}{
		{"Update", func(c *Cache) { c.Update(sd.Event{Instances: []string{"b"}, Err: boom}) }},
		{"Apply", func(c *Cache) { c.Apply([]string{"b"}, []string{"a"}, boom) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache()
			c.Update(sd.Event{Instances: []string{"a"}})
			ch := make(chan sd.Event, 1)
			c.Register(ch) // the first state fills the buffer: the next send waits
			changed := make(chan struct{})
			go func() { // ends when Stop abandons the send
				defer close(changed)
				tc.change(c)
			}()
			waitSending(t)
			c.Stop()
			<-changed
			c.Stop() // idempotent
			tc.change(c)
			if st := c.State(); !slices.Equal(st.Instances, []string{"a"}) || st.Err != nil || c.Len() != 1 {
				t.Errorf("State after Stop: %v (err %v), want [a], the last state the subscriber got", st.Instances, st.Err)
			}
			if ev := <-ch; !slices.Equal(ev.Instances, []string{"a"}) || len(ch) > 0 {
				t.Errorf("the subscriber got %v and %d more, want [a] alone", ev.Instances, len(ch))
			}
			late, lateDeltas := make(chan sd.Event, 2), make(chan Delta, 2)
			c.Register(late)
			c.RegisterDelta(lateDeltas)
			c.Update(sd.Event{Instances: []string{"c"}})
			if ev := recvWithin(t, late, "the state for a Register after Stop"); !slices.Equal(ev.Instances, []string{"a"}) || len(late) > 0 {
				t.Errorf("a Register after Stop got %v and %d more, want [a] once", ev.Instances, len(late))
			}
			if d := recvWithin(t, lateDeltas, "the state for a RegisterDelta after Stop"); !slices.Equal(d.Added, []string{"a"}) || len(lateDeltas) > 0 {
				t.Errorf("a RegisterDelta after Stop got %+v and %d more, want [a] added once", d, len(lateDeltas))
			}
			c.Deregister(late) // harmless after Stop
		})
	}
}

// waitSending waits, up to 10 s, until a goroutine is inside send: a
// change then waits for a subscriber.
func waitSending(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if n := runtime.Stack(buf, true); bytes.Contains(buf[:n], []byte("registry.send[")) {
			return
		}
	}
	t.Fatal("no change was waiting for a subscriber within 10 s")
}
