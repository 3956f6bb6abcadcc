package meshview

import (
	"maps"
	"slices"
	"strings"

	"github.com/warren-mesh/warren/framework/registry"
)

// Change is one instance's difference between two sets of a service.
type Change struct {
	// Kind is KindRegister (new ID), KindUpdate (same ID, another record)
	// or KindWithdraw (the ID left).
	Kind string
	// Old is the record before (update, withdraw); New after (register,
	// update).
	Old, New registry.Instance
}

// Detail says what changed, in a few words.
func (c Change) Detail() string {
	switch c.Kind {
	case KindRegister:
		return describe(c.New)
	case KindUpdate:
		return changes(c.Old, c.New)
	}
	return ""
}

// Diff compares a service's previous set (by ID) with the instance strings
// of a discovery event: the changes, by ID, and the new set. Strings that
// do not parse are left out (the backends log such records).
func Diff(prev map[string]registry.Instance, next []string) ([]Change, map[string]registry.Instance) {
	set := make(map[string]registry.Instance, len(next))
	for _, raw := range next {
		if inst, err := registry.ParseInstance(raw); err == nil {
			set[inst.ID] = inst
		}
	}
	var out []Change
	for _, id := range slices.Sorted(maps.Keys(set)) {
		old, ok := prev[id]
		switch {
		case !ok:
			out = append(out, Change{Kind: KindRegister, New: set[id]})
		case old.String() != set[id].String():
			out = append(out, Change{Kind: KindUpdate, Old: old, New: set[id]})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := set[id]; !ok {
			out = append(out, Change{Kind: KindWithdraw, Old: prev[id]})
		}
	}
	return out, set
}

func describe(i registry.Instance) string {
	d := strings.Join(i.Endpoints, " ")
	if i.Zone != "" {
		d += " zone " + i.Zone
	}
	if i.Version != "" {
		d += " version " + i.Version
	}
	return d
}

// changes says what differs between two records of one instance.
func changes(a, b registry.Instance) string {
	var out []string
	if !slices.Equal(a.Endpoints, b.Endpoints) {
		out = append(out, "endpoints "+strings.Join(a.Endpoints, " ")+" → "+strings.Join(b.Endpoints, " "))
	}
	if a.Version != b.Version {
		out = append(out, "version "+a.Version+" → "+b.Version)
	}
	if a.Zone != b.Zone {
		out = append(out, "zone "+a.Zone+" → "+b.Zone)
	}
	if a.Weight != b.Weight {
		out = append(out, "weight")
	}
	if !slices.Equal(a.Tags, b.Tags) {
		out = append(out, "tags")
	}
	if !maps.Equal(a.Metadata, b.Metadata) {
		out = append(out, "metadata")
	}
	if len(out) == 0 {
		return "record rewritten"
	}
	return strings.Join(out, ", ")
}
