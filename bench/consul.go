package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
)

// consulSamples is how many register and deregister round trips are timed.
const consulSamples = 60

// benchConsulPropagation times how long a change takes to reach an
// instancer through a real -dev Consul agent on loopback: from calling
// Register to the event that contains the instance, and from calling
// Deregister to the event without it. The Registry runs with its defaults
// (TTL check, 10 queries/s per instancer); samples are 100ms apart, as
// independent changes would be, rather than a storm the rate limit shapes.
func benchConsulPropagation(ctx context.Context, rep *report) error {
	agent, err := consultest.Start(ctx)
	if errors.Is(err, consultest.ErrNoBinary) {
		return fmt.Errorf("no consul agent to measure against: %w", err)
	}
	if err != nil {
		return err
	}
	defer agent.Close()

	reg, err := consul.New(ctx, consul.WithAddress(agent.Addr()))
	if err != nil {
		return err
	}
	defer reg.Close()
	in, err := reg.NewInstancer(ctx, "bench-prop")
	if err != nil {
		return err
	}
	defer in.Stop()
	events := make(chan sd.Event, 16)
	in.Register(events)
	defer func() {
		// Keep reading until Deregister returns: Cache sends synchronously.
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-events:
				case <-done:
					return
				}
			}
		}()
		in.Deregister(events)
		close(done)
	}()

	inst := registry.Instance{ID: "bench-prop-1", Name: "bench-prop", Address: "127.0.0.1", Port: 8080}
	present := func(ev sd.Event) bool {
		for _, s := range ev.Instances {
			if got, err := registry.ParseInstance(s); err == nil && got.ID == inst.ID {
				return true
			}
		}
		return false
	}
	await := func(want bool) error {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.Err == nil && present(ev) == want {
					return nil
				}
			case <-deadline:
				return fmt.Errorf("no event with the instance present=%v within 10s", want)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := await(false); err != nil { // the first, empty set
		return err
	}

	var up, down []time.Duration
	for range consulSamples {
		start := time.Now()
		if err := reg.Register(ctx, inst); err != nil {
			return err
		}
		if err := await(true); err != nil {
			return err
		}
		up = append(up, time.Since(start))
		time.Sleep(100 * time.Millisecond)

		start = time.Now()
		if err := reg.Deregister(ctx, inst); err != nil {
			return err
		}
		if err := await(false); err != nil {
			return err
		}
		down = append(down, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}

	note := fmt.Sprintf("n=%d, -dev agent on loopback", consulSamples)
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"register→event", up}, {"deregister→event", down}} {
		rep.add(row{Suite: "consul-propagation", Metric: m.name + " p50", Value: ms(percentile(m.ds, 50)), Unit: "ms", Note: note})
		rep.add(row{Suite: "consul-propagation", Metric: m.name + " p99", Value: ms(percentile(m.ds, 99)), Unit: "ms", Note: note})
	}
	return nil
}
