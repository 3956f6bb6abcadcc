package memory

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

func testInstance(id string, port int) registry.Instance {
	return registry.Instance{ID: id, Name: "svc", Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", port)}}
}

// recv returns the next value of ch, failing the test after 5 s.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
		var zero T
		return zero
	}
}

// quiet fails if ch holds a value: sends are synchronous, so a change
// published before Register returned is in a buffered channel by then.
func quiet[T any](t *testing.T, ch <-chan T, after string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("got %v after %s", v, after)
	default:
	}
}

// Stop ends the go-kit and the delta subscriptions made through the
// instancer; a Register after it gets the set at Stop once, and State
// stays that set. Stop used to do nothing: the subscriptions went on.
func TestInstancer_StopEndsItsSubscriptionsAndFreezesItsState(t *testing.T) {
	ctx := context.Background()
	r := New()
	defer r.Close()
	in, err := r.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sd.Event, 8)
	dch := make(chan registry.Delta, 8)
	in.Register(ch)
	in.(registry.DeltaInstancer).RegisterDelta(dch)
	recv(t, ch)
	recv(t, dch)
	a := testInstance("a", 1)
	if err := r.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	recv(t, ch)
	recv(t, dch)

	in.Stop()
	in.Stop()
	if err := r.Register(ctx, testInstance("b", 2)); err != nil {
		t.Fatal(err)
	}
	quiet(t, ch, "Stop (go-kit subscriber)")
	quiet(t, dch, "Stop (delta subscriber)")
	in.Deregister(ch) // harmless after Stop
	in.(registry.DeltaInstancer).DeregisterDelta(dch)

	late := make(chan sd.Event, 2)
	in.Register(late)
	if got, want := recv(t, late).Instances, []string{a.String()}; !slices.Equal(got, want) {
		t.Errorf("Register after Stop: %v, want the set at Stop %v", got, want)
	}
	if err := r.Deregister(ctx, a); err != nil {
		t.Fatal(err)
	}
	quiet(t, late, "a Register after Stop")
	st := in.(interface{ State() sd.Event }).State()
	if want := []string{a.String()}; !slices.Equal(st.Instances, want) {
		t.Errorf("State after Stop: %v, want the set at Stop %v", st.Instances, want)
	}
}

// Tests share one Registry between a service and its clients: when the
// service closes it, the clients' instancers (made from the same
// Registry) see the withdrawal and then stop; an instancer of another
// Registry of the server goes on.
func TestRegistry_CloseSendsTheWithdrawalThenStopsItsInstancers(t *testing.T) {
	ctx := context.Background()
	srv := NewServer()
	shared, other := srv.Registry(), srv.Registry()
	defer other.Close()
	mine, err := shared.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Stop()
	theirs, err := other.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Stop()
	ch, och := make(chan sd.Event, 8), make(chan sd.Event, 8)
	mine.Register(ch)
	theirs.Register(och)
	defer theirs.Deregister(och)
	recv(t, ch)
	recv(t, och)
	a := testInstance("a", 1)
	if err := shared.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	recv(t, ch)
	recv(t, och)

	if err := shared.Close(); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, ch); len(ev.Instances) != 0 {
		t.Errorf("the closing Registry's subscriber got %v, want the withdrawal (empty set)", ev.Instances)
	}
	if ev := recv(t, och); len(ev.Instances) != 0 {
		t.Errorf("another Registry's subscriber got %v, want the withdrawal (empty set)", ev.Instances)
	}
	third := srv.Registry()
	defer third.Close()
	if err := third.Register(ctx, testInstance("b", 2)); err != nil {
		t.Fatal(err)
	}
	quiet(t, ch, "its Registry's Close")
	if ev := recv(t, och); len(ev.Instances) != 1 {
		t.Errorf("another Registry's subscriber got %v after the Close, want b", ev.Instances)
	}
}

// After Stop, State (and a Register) give the newest set a subscriber of
// the instancer got, never an older one, while another Registry keeps
// registering as Stop runs. Stop used to read the state first and end
// the subscriptions after, one by one: a change published in between
// reached some subscribers and not State (review s58-r2 F7). Each round
// stops an instancer with many subscribers under a stream of changes;
// the outcome does not depend on where Stop falls in the stream.
func TestInstancer_StateAfterStopIsTheNewestSetItsSubscribersGot(t *testing.T) {
	ctx := context.Background()
	const rounds, subs, changes = 300, 64, 200
	for round := range rounds {
		srv := NewServer()
		r, pub := srv.Registry(), srv.Registry()
		in, err := r.Instancer(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		var chs []chan sd.Event
		for range subs {
			ch := make(chan sd.Event, changes+2) // never full: no reader needed
			in.Register(ch)
			chs = append(chs, ch)
		}
		started, stop, published := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() { // ends after at most changes Registers
			for i := range changes {
				if i == 5 {
					close(started)
				}
				select {
				case <-stop:
					published <- nil
					return
				default:
				}
				if err := pub.Register(ctx, testInstance(fmt.Sprintf("i%d", i), 1000+i)); err != nil {
					published <- err
					return
				}
			}
			published <- nil
		}()
		<-started
		in.Stop()
		close(stop)
		if err := <-published; err != nil {
			t.Fatal(err)
		}
		var newest []string
		for _, ch := range chs {
			var last []string
			for len(ch) > 0 {
				last = (<-ch).Instances
			}
			if len(last) > len(newest) { // the set only grows
				newest = last
			}
		}
		state := in.(interface{ State() sd.Event }).State()
		late := make(chan sd.Event, 1)
		in.Register(late)
		lateSet := (<-late).Instances
		if !slices.Equal(state.Instances, newest) || !slices.Equal(lateSet, newest) {
			t.Fatalf("round %d: State after Stop has %d instances, a Register after it %d; the newest set a subscriber got has %d",
				round, len(state.Instances), len(lateSet), len(newest))
		}
		r.Close()
		pub.Close()
	}
}
