package clusters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/client"
)

// Rate is the calls per second of every phase's load.
const Rate = 200

// Mesh is a set of stable backends, a client calling them through
// discovery, and a watcher on the client's instancer. Each phase adds one
// backend during the fault and withdraws the previous phase's, so a phase
// proves that a change made while the registry is broken still reaches
// the client.
type Mesh struct {
	env     Env
	Base    []*Backend
	extra   *Backend
	phases  int
	in      sd.Instancer
	Watcher *Watcher
	Client  *client.Client
}

// NewMesh starts n stable backends (registry slots 0..n-1) and the client,
// and waits until the client's instancer shows all of them.
func NewMesh(ctx context.Context, env Env, n int) (*Mesh, error) {
	m := &Mesh{env: env}
	for i := range n {
		b, err := env.StartBackend(ctx, i, fmt.Sprintf("b%d", i))
		if err != nil {
			m.Close()
			return nil, err
		}
		m.Base = append(m.Base, b)
	}
	in, err := env.Discovery.Instancer(ctx, Service)
	if err != nil {
		m.Close()
		return nil, err
	}
	m.in = in
	m.Watcher = Watch(in)
	if m.Client, err = NewClient(in); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.Watcher.WaitFor(ctx, m.ids()...); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Mesh) ids() []string {
	var ids []string
	for _, b := range m.Base {
		ids = append(ids, b.ID)
	}
	if m.extra != nil {
		ids = append(ids, m.extra.ID)
	}
	return ids
}

// Close stops everything the Mesh started. Idempotent.
func (m *Mesh) Close() {
	if m.Client != nil {
		m.Client.Close()
	}
	if m.Watcher != nil {
		m.Watcher.Stop()
	}
	if m.in != nil {
		m.in.Stop()
	}
	for _, b := range append(slices.Clone(m.Base), m.extra) {
		if b != nil {
			b.Close()
		}
	}
	m.Base, m.extra, m.Client, m.Watcher, m.in = nil, nil, nil, nil, nil
}

// Fault is one phase: Break is the fault, done before the new backend
// registers; Repair undoes it and returns once the registry is healthy.
type Fault struct {
	Name   string
	Break  func(ctx context.Context) error
	Repair func(ctx context.Context) error
	// Slot is the registry slot (Env.Open's i) of the backend added
	// during the fault.
	Slot int
}

// Figures are what one phase measured.
type Figures struct {
	Phase string
	// Register: fault → Register of a new backend returned (it was written).
	Register time.Duration
	// Routed: fault → the first client call served by that new backend.
	Routed time.Duration
	// Calls and Errors of the load during the whole phase.
	Calls, Errors int
	// Duplicates is the most IDs or addresses one event listed twice.
	Duplicates int
	// Missing counts events, during the phase, without every stable backend.
	Missing int
	// Reregistrations of the stable backends during the phase.
	Reregistrations int
	FirstErrors     []string
	FirstMissing    string // the first event that lacked a stable backend
	// Withdraw is the error of the previous backend's Deregister, if it
	// failed during the fault (its record then expired).
	Withdraw string
}

func (f Figures) String() string {
	s := fmt.Sprintf("%s: register %.2fs, routed %.2fs, errors %d/%d, duplicates %d, missing %d, re-registrations %d",
		f.Phase, f.Register.Seconds(), f.Routed.Seconds(), f.Errors, f.Calls, f.Duplicates, f.Missing, f.Reregistrations)
	if f.FirstMissing != "" {
		s += " (first missing: " + f.FirstMissing + ")"
	}
	if f.Withdraw != "" {
		s += " (withdrawal failed, record expired instead: " + f.Withdraw + ")"
	}
	return s
}

// Run drives one phase under a Rate req/s load: Break, register a new
// backend and withdraw the previous phase's while broken, wait until the
// client routes to the new one and its instancer shows exactly the
// expected set, Repair, check the set again, and stop the load. ctx bounds
// it all. Figures are returned with any error, as far as measured.
func (m *Mesh) Run(ctx context.Context, f Fault) (Figures, error) {
	fig := Figures{Phase: f.Name}
	start := time.Now()
	rereg := m.reregistrations()
	at := start // the fault's time, once it happened
	run := load(2*time.Minute).Start(ctx, Call(m.Client))
	finish := func(err error) (Figures, error) {
		run.Stop()
		res := run.Wait()
		fig.Calls, fig.Errors, fig.FirstErrors = res.Total(), res.Errors(), res.FirstErrors(5)
		for _, s := range m.Watcher.Since(start) {
			fig.Duplicates = max(fig.Duplicates, s.Duplicates())
			for _, b := range m.Base {
				if _, ok := slices.BinarySearch(s.IDs, b.ID); !ok {
					fig.Missing++
					if fig.FirstMissing == "" {
						fig.FirstMissing = fmt.Sprintf("%s at +%.2fs: %v (err %v)", b.ID, s.At.Sub(at).Seconds(), s.IDs, s.Err)
					}
					break
				}
			}
		}
		fig.Reregistrations = m.reregistrations() - rereg
		return fig, err
	}
	if !sleep(ctx, time.Second) {
		return finish(ctx.Err())
	}

	at = time.Now()
	if err := f.Break(ctx); err != nil {
		return finish(fmt.Errorf("break: %w", err))
	}
	m.phases++
	old := m.extra
	withdrawn := make(chan error, 1)
	go func() { // bounded by ctx; waited for below
		if old == nil {
			withdrawn <- nil
			return
		}
		withdrawn <- old.Deregister(ctx)
	}()
	nb, err := m.env.StartBackend(ctx, f.Slot, fmt.Sprintf("x%d", m.phases))
	if err != nil {
		<-withdrawn
		return finish(fmt.Errorf("new backend during the fault: %w", err))
	}
	fig.Register = time.Since(at)
	m.extra = nil
	defer func() {
		if old != nil {
			old.Close()
		}
	}()
	if err := <-withdrawn; err != nil {
		// Deregister is bounded by the close timeout: with the whole
		// registry down longer than that, it fails and the record goes
		// when its lease or check expires. The instancer must see that
		// too (WaitFor below); the backend serves until the phase ends.
		fig.Withdraw = err.Error()
	}
	m.extra = nb
	for nb.FirstHit().IsZero() {
		if !sleep(ctx, 10*time.Millisecond) {
			return finish(fmt.Errorf("no call reached the new backend %s (%s): %w", nb.ID, m.where(nb), ctx.Err()))
		}
	}
	fig.Routed = nb.FirstHit().Sub(at)
	if err := m.Watcher.WaitFor(ctx, m.ids()...); err != nil {
		return finish(fmt.Errorf("during the fault: %w", err))
	}
	if err := f.Repair(ctx); err != nil {
		return finish(fmt.Errorf("repair: %w", err))
	}
	if err := m.Watcher.WaitFor(ctx, m.ids()...); err != nil {
		return finish(fmt.Errorf("after repair: %w", err))
	}
	if !sleep(ctx, time.Second) {
		return finish(ctx.Err())
	}
	return finish(nil)
}

// Check returns an error naming every pass criterion the figures miss:
// no failed call, no duplicate, no stable backend missing.
func (f Figures) Check() error {
	var errs []error
	if f.Errors != 0 {
		errs = append(errs, fmt.Errorf("%d of %d calls failed: %v", f.Errors, f.Calls, f.FirstErrors))
	}
	if f.Duplicates != 0 {
		errs = append(errs, fmt.Errorf("an event listed %d instances twice", f.Duplicates))
	}
	if f.Missing != 0 {
		errs = append(errs, fmt.Errorf("%d events lacked a stable backend, first %s", f.Missing, f.FirstMissing))
	}
	if f.Calls == 0 {
		errs = append(errs, errors.New("no calls were made"))
	}
	return errors.Join(errs...)
}

// where says how far b got towards the client: its registry's state, and
// whether the client's instancer lists it — so a phase that never routes
// to a new backend says whether registration, discovery or the client's
// balancing held it back.
func (m *Mesh) where(b *Backend) string {
	last := m.Watcher.Last()
	_, listed := slices.BinarySearch(last.IDs, b.ID)
	return fmt.Sprintf("registry %s; the client's instancer last at %s: %v (err %v), listing it: %t",
		b.Status(), last.At.Format("15:04:05.000"), last.IDs, last.Err, listed)
}

func (m *Mesh) reregistrations() int {
	n := 0
	for _, b := range m.Base {
		n += b.Reregistrations()
	}
	return n
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool { return backoff.Sleep(ctx, d) }
