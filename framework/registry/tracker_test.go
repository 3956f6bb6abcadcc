package registry

import (
	"errors"
	"testing"
)

type reg struct{ name string }

// The Status rule of the contract, step by step: unregistered before the
// first registration, the worst state over all, withdrawn once every one
// is withdrawn; a failed Register leaves the state; a stale registration
// (replaced or withdrawn) is not heard.
func TestTracker_StatusIsTheWorstStateOverEveryRegistration(t *testing.T) {
	tr := NewTracker[*reg]()
	want := func(step string, s State) {
		t.Helper()
		if got := tr.Status().State; got != s {
			t.Fatalf("%s: state %q, want %q", step, got, s)
		}
	}
	want("new", StateUnregistered)

	a, b := &reg{"a"}, &reg{"b"}
	tr.Put("a", a, StateUnregistered)
	tr.Set("a", a, StateRegistered, nil, false)
	want("a registered", StateRegistered)
	tr.Put("b", b, StateUnregistered)
	want("b registering", StateUnregistered)
	tr.Set("b", b, StateRetrying, errors.New("b down"), false)
	want("b retrying", StateRetrying)
	if st := tr.Status(); st.LastError != "b down" {
		t.Fatalf("LastError %q", st.LastError)
	}
	tr.Set("b", b, StateRegistered, nil, true)
	want("both registered", StateRegistered)
	if st := tr.Status(); st.Reregistrations != 1 || st.LastError != "b down" {
		t.Fatalf("after re-registering: %+v; want 1 re-registration and the last error kept", st)
	}

	// b is replaced: the old one's reports are ignored.
	b2 := &reg{"b2"}
	tr.Put("b", b2, StateRegistered)
	tr.Set("b", b, StateRetrying, errors.New("stale"), true)
	tr.Drop("b", b, errors.New("stale"))
	want("stale reports", StateRegistered)
	if st := tr.Status(); st.Reregistrations != 1 || st.LastError != "b down" {
		t.Fatalf("a stale registration was heard: %+v", st)
	}
	if got, s, ok := tr.Get("b"); !ok || got != b2 || s != StateRegistered {
		t.Fatalf("Get(b) = %v %q %v", got, s, ok)
	}

	// A failed Register drops its registration and leaves the state.
	c := &reg{"c"}
	tr.Put("c", c, StateUnregistered)
	tr.Set("c", c, StateRetrying, errors.New("c refused"), false)
	tr.Drop("c", c, errors.New("c gave up"))
	want("c dropped", StateRegistered)
	if st := tr.Status(); st.LastError != "c gave up" {
		t.Fatalf("LastError %q", st.LastError)
	}

	if _, ok := tr.Withdraw("a"); !ok {
		t.Fatal("a not withdrawn")
	}
	want("b left", StateRegistered)
	if _, ok := tr.Withdraw("nothing"); ok {
		t.Fatal("withdrew what was not there")
	}
	tr.Set("b", b2, StateWithdrawn, errors.New("superseded"), false) // as a Keeper reports it
	want("all withdrawn", StateWithdrawn)

	tr.Put("d", &reg{"d"}, StateRegistered)
	if got := tr.Close(); len(got) != 1 || got["d"] == nil {
		t.Fatalf("Close returned %v", got)
	}
	want("closed", StateWithdrawn)
}

// A Register that fails before anything was registered leaves
// unregistered, not withdrawn: nothing was ever published.
func TestTracker_FailedFirstRegisterStaysUnregistered(t *testing.T) {
	tr := NewTracker[*reg]()
	a := &reg{"a"}
	tr.Put("a", a, StateUnregistered)
	tr.Drop("a", a, errors.New("refused"))
	if st := tr.Status(); st.State != StateUnregistered || st.LastError != "refused" {
		t.Fatalf("%+v", st)
	}
}
