package devmesh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// This file holds the hooks fault tests and benchmarks use to break a
// running mesh the way production breaks: signals to one process, extra
// instances with their own settings, restarts, and the registry itself.

// Server returns the registry server the mesh runs, so a test can stop and
// start it under the running services: assert it to the backend's dev
// server type (*etcddev.Server, *consuldev.Server).
func (m *Mesh) Server() Server { return m.server }

// TTL is the etcd lease / Consul check TTL the services were given.
func (m *Mesh) TTL() time.Duration { return m.cfg.TTL }

// Signal sends sig to the instance's process: SIGSTOP hangs it (its
// sockets still accept, nothing answers), SIGCONT resumes it, SIGTERM
// starts its ordered shutdown.
func (m *Mesh) Signal(in *Instance, sig syscall.Signal) error {
	select {
	case <-in.exited:
		return fmt.Errorf("devmesh: %s (pid %d) has exited", in.ID(), in.Pid())
	default:
	}
	if sig == syscall.SIGTERM || sig == syscall.SIGKILL || sig == syscall.SIGINT {
		in.ending.Store(true)
	}
	return in.cmd.Process.Signal(sig)
}

// Err is how the process ended (nil while running or after exit 0).
func (in *Instance) Err() error {
	select {
	case <-in.exited:
		return in.err
	default:
		return nil
	}
}

// InstanceOptions adjust one instance started by StartInstance.
type InstanceOptions struct {
	// Env is added after the launcher's own WARREN_* variables and so
	// overrides them: WARREN_ADVERTISE=127.0.0.1:port to publish a proxy's
	// address, WARREN_LISTEN for a fixed port, WARREN_ID for a chosen ID.
	Env []string
}

// StartInstance starts one more instance of svc, numbered after the
// highest index so far, and returns without waiting; WaitReady waits.
func (m *Mesh) StartInstance(svc string, opts InstanceOptions) (*Instance, error) {
	next := 1
	for _, in := range m.Instances() {
		if in.Service == svc && in.Index >= next {
			next = in.Index + 1
		}
	}
	return m.startInstance(svc, next, opts.Env)
}

// WaitReady waits until discovery lists the instance's ID and it answers
// ready (/readyz 200, or gRPC health SERVING for an instance without
// HTTP), and fills in.Registered. It fails at once if the process
// exits meanwhile.
func (m *Mesh) WaitReady(ctx context.Context, in *Instance) error {
	ri, err := m.waitListed(ctx, in)
	if err != nil {
		return err
	}
	in.Registered = ri
	client := &http.Client{Timeout: 2 * time.Second}
	for ok, _ := m.ready(ctx, client, in); !ok; ok, _ = m.ready(ctx, client, in) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("devmesh: %s not ready: %w", in.ID(), ctx.Err())
		case <-in.exited:
			return in.exitedError()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// waitListed waits until discovery lists the instance's ID, from a
// process that is still running.
func (m *Mesh) waitListed(ctx context.Context, in *Instance) (registry.Instance, error) {
	var found registry.Instance
	_, err := m.watchUntil(ctx, in.Service, in.exited, func(ev sd.Event) (bool, error) {
		for _, ri := range parseAll(ev) {
			if ri.ID == in.ID() {
				found = ri
				return true, nil
			}
		}
		return false, nil
	})
	switch {
	case errors.Is(err, errExited):
		return registry.Instance{}, in.exitedError()
	case err != nil:
		return registry.Instance{}, fmt.Errorf("devmesh: %s not registered: %w", in.ID(), err)
	}
	return found, nil
}

// Restart stops the instance with SIGTERM (it withdraws, drains and
// deregisters; a SIGSTOPped one is resumed for it), waits for it to exit, then starts a new process with the
// same index, ID and extra environment and waits until it is ready. The
// new process listens on a new port unless the environment fixes one.
func (m *Mesh) Restart(ctx context.Context, in *Instance) (*Instance, error) {
	if err := m.Signal(in, syscall.SIGTERM); err != nil {
		return nil, err
	}
	// A process hung with SIGSTOP (Signal) acts on the SIGTERM only once
	// it runs again, as in Stop.
	_ = in.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-in.exited:
	case <-ctx.Done():
		return nil, fmt.Errorf("devmesh: %s did not exit: %w", in.ID(), ctx.Err())
	}
	if in.err != nil {
		return nil, fmt.Errorf("devmesh: %s exited uncleanly after SIGTERM: %w", in.ID(), in.err)
	}
	next, err := m.startInstance(in.Service, in.Index, in.env)
	if err != nil {
		return nil, err
	}
	if err := m.WaitReady(ctx, next); err != nil {
		return nil, err
	}
	return next, nil
}
