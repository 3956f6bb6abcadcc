package registry

import (
	"fmt"
	"strings"
	"testing"
)

// ValidName is a DNS label of at most 63 characters (docs/registry.md,
// invalid names): a 64-character name would be refused by Consul's DNS
// and Kubernetes, so Register and Instancer must refuse it first.
func TestGuard_ValidNameStopsAt63Characters(t *testing.T) {
	for name, want := range map[string]bool{
		"a" + strings.Repeat("b", 62): true,
		"a" + strings.Repeat("b", 63): false,
		"user-2":                      true,
		"User":                        false,
		"2user":                       false,
		"us_er":                       false,
		"":                            false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) (%d chars) = %v, want %v", name, len(name), got, want)
		}
	}
}

// The worst state over every registration wins whichever registration
// the Tracker happens to look at last: one retrying registration among
// many registered ones makes the whole Status retrying, and an
// unregistered one (a first write in progress) beats registered. With
// 32 registrations a rule that let the last one looked at decide would
// be right about 1 time in 32 per check; the checks below are many.
func TestGuard_TrackerWorstStateWinsWhateverTheOrder(t *testing.T) {
	tr := NewTracker[*reg]()
	regs := make([]*reg, 32)
	for i := range regs {
		regs[i] = &reg{fmt.Sprint(i)}
		tr.Put(regs[i].name, regs[i], StateRegistered)
	}
	for round := range 8 {
		odd := regs[(round*7)%len(regs)]
		tr.Set(odd.name, odd, StateRetrying, fmt.Errorf("round %d", round), false)
		for i := range 4 { // each Set recomputes; touch others to recompute again
			other := regs[(round*7+i+1)%len(regs)]
			tr.Set(other.name, other, StateRegistered, nil, false)
			if got := tr.Status().State; got != StateRetrying {
				t.Fatalf("round %d: state %q with %s retrying, want retrying", round, got, odd.name)
			}
		}
		tr.Set(odd.name, odd, StateUnregistered, nil, false)
		for i := range 4 {
			other := regs[(round*7+i+1)%len(regs)]
			tr.Set(other.name, other, StateRegistered, nil, false)
			if got := tr.Status().State; got != StateUnregistered {
				t.Fatalf("round %d: state %q with %s unregistered, want unregistered", round, got, odd.name)
			}
		}
		tr.Set(odd.name, odd, StateRegistered, nil, true)
		if got := tr.Status().State; got != StateRegistered {
			t.Fatalf("round %d: state %q with every one registered", round, got)
		}
	}
}

// A DNS label does not end with a dash (RFC 1123): "user-" was accepted
// and registered on etcd or Consul, then refused as a Kubernetes Service
// name or a DNS SRV label. svcgen already refused it; the registry did not.
func TestValidName_RefusesATrailingDashAsAnyDNSLabel(t *testing.T) {
	for name, want := range map[string]bool{
		"user-":  false,
		"u-":     false,
		"a":      true,
		"a-b":    true,
		"a--b":   true, // RFC 1123 allows it (xn--)
		"user-2": true,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
		if got := nameRE.MatchString(name); got != want {
			t.Errorf("nameRE, used in the error message, says %q is %v, want %v", name, got, want)
		}
	}
}
