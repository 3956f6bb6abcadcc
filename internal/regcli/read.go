package regcli

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// skipReporter is an instancer that leaves out entries its registry
// lists but cannot serve, and says which and why: the kubernetes
// registry's, for a ready Pod with an annotation it cannot read (report
// j56a F5: such a Pod was missing from ls and watch without a word).
// Other registries need not implement it.
type skipReporter interface {
	// Skipped returns what the set last published left out: an
	// identifier (a Pod's name) → why.
	Skipped() map[string]string
}

// skip is one entry a skipReporter left out.
type skip struct{ id, reason string }

// skipsOf returns what ins left out, sorted by id; nil when ins does not
// say.
func skipsOf(ins sd.Instancer) []skip {
	sr, ok := ins.(skipReporter)
	if !ok {
		return nil
	}
	m := sr.Skipped()
	var out []skip
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, skip{id, m[id]})
	}
	return out
}

// follow subscribes to service and calls f with each event, and what the
// instancer skipped as of it, until f says stop, f fails or ctx ends
// (then it returns ctx's error). The subscription is undone before it
// returns.
func follow(ctx context.Context, d registry.Discovery, service string, f func(sd.Event, []skip) (stop bool, err error)) error {
	ins, err := d.Instancer(ctx, service)
	if err != nil {
		return fmt.Errorf("watch %s: %w", service, err)
	}
	defer ins.Stop()
	var ferr error
	err = registry.Follow(ctx, ins, func(ev sd.Event) bool {
		stop, err := f(ev, skipsOf(ins))
		ferr = err
		return stop || err != nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// current returns the service's instance set as discovery has it now (the
// first event of a new subscription) and what it skipped.
func current(ctx context.Context, d registry.Discovery, service string) (sd.Event, []skip, error) {
	var (
		got     sd.Event
		skipped []skip
	)
	err := follow(ctx, d, service, func(ev sd.Event, s []skip) (bool, error) { got, skipped = ev, s; return true, nil })
	return got, skipped, err
}
