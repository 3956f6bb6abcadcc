package regcli

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// follow subscribes to service and calls f with each event until f says
// stop, f fails or ctx ends (then it returns ctx's error). The
// subscription is undone before it returns.
func follow(ctx context.Context, d registry.Discovery, service string, f func(sd.Event) (stop bool, err error)) error {
	ins, err := d.Instancer(ctx, service)
	if err != nil {
		return fmt.Errorf("watch %s: %w", service, err)
	}
	defer ins.Stop()
	var ferr error
	err = registry.Follow(ctx, ins, func(ev sd.Event) bool {
		stop, err := f(ev)
		ferr = err
		return stop || err != nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// current returns the service's instance set as discovery has it now: the
// first event of a new subscription.
func current(ctx context.Context, d registry.Discovery, service string) (sd.Event, error) {
	var got sd.Event
	err := follow(ctx, d, service, func(ev sd.Event) (bool, error) { got = ev; return true, nil })
	return got, err
}
