package meshview

import (
	"context"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// serviceState is one watched service; View.mu guards it.
type serviceState struct {
	name      string
	err       string
	instances map[string]*instanceState
}

func newServiceState(name string) *serviceState {
	return &serviceState{name: name, instances: map[string]*instanceState{}}
}

// instanceState is one instance discovery shows; View.mu guards it.
type instanceState struct {
	inst      registry.Instance
	firstSeen time.Time
	probe     probeResult
	stop      context.CancelFunc
	// left is closed when the record leaves discovery, at leftAt; the
	// probe loop then settles whether the process still answered.
	left   chan struct{}
	leftAt time.Time
}

// runService watches one service until ctx ends: it opens an instancer
// (again after a failure, with backoff) and turns its events into the
// service's instance set and timeline events.
func (v *View) runService(ctx context.Context, s *serviceState) {
	var wg sync.WaitGroup // the instances' probes
	defer wg.Wait()
	b := backoff.New(200*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		ins, err := v.disc.Instancer(ctx, s.name)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			level.Warn(v.cfg.logger).Log("msg", "cannot watch", "service", s.name, "err", err)
			v.apply(ctx, &wg, s, sd.Event{Err: err}, true)
			backoff.Sleep(ctx, b.Next())
			continue
		}
		v.follow(ctx, &wg, s, ins)
		ins.Stop()
	}
}

// follow reads one instancer's events until ctx ends.
func (v *View) follow(ctx context.Context, wg *sync.WaitGroup, s *serviceState, ins sd.Instancer) {
	_ = registry.Follow(ctx, ins, func(ev sd.Event) bool {
		v.apply(ctx, wg, s, ev, false)
		return false
	})
}

// apply turns one discovery event into the service's new state. An event
// with an error keeps the instances it carries only when it carries any
// (backends send the last good set with the error); keepOnError keeps
// them always, for errors of our own (opening the instancer).
func (v *View) apply(ctx context.Context, wg *sync.WaitGroup, s *serviceState, ev sd.Event, keepOnError bool) {
	now := v.cfg.now()
	var events []Event
	v.mu.Lock()
	if ev.Err != nil {
		if msg := ev.Err.Error(); msg != s.err {
			events = append(events, Event{Time: now, Kind: KindError, Service: s.name, Detail: msg})
			s.err = msg
		}
		if keepOnError || len(ev.Instances) == 0 {
			v.mu.Unlock()
			v.emit(events)
			return
		}
	} else if s.err != "" {
		events = append(events, Event{Time: now, Kind: KindRecovered, Service: s.name, Detail: "discovery answers again"})
		s.err = ""
	}
	prev := make(map[string]registry.Instance, len(s.instances))
	for id, in := range s.instances {
		prev[id] = in.inst
	}
	diff, _ := Diff(prev, ev.Instances)
	for _, c := range diff {
		e := Event{Time: now, Kind: c.Kind, Service: s.name, Detail: c.Detail()}
		switch c.Kind {
		case KindRegister:
			e.Instance = c.New.ID
			pctx, cancel := context.WithCancel(ctx)
			in := &instanceState{inst: c.New, firstSeen: now, stop: cancel, left: make(chan struct{})}
			s.instances[c.New.ID] = in
			wg.Add(1)
			go func() { // owned by the service's watch: ends once the instance has left and its departure is settled, or the view stops
				defer wg.Done()
				defer cancel()
				v.probeLoop(pctx, s.name, in)
			}()
		case KindUpdate:
			e.Instance = c.New.ID
			s.instances[c.New.ID].inst = c.New
		case KindWithdraw:
			// Discovery does not say why a record went, and the last probe
			// may predate a hang (a frozen process keeps its lease for a
			// while, and its in-flight probe has not failed yet). The probe
			// loop settles it with the first /readyz that ends after now,
			// and adds the event then, dated now.
			in := s.instances[c.Old.ID]
			delete(s.instances, c.Old.ID)
			in.leftAt = now
			close(in.left)
			continue
		}
		events = append(events, e)
	}
	v.mu.Unlock()
	v.emit(events)
}

func (v *View) emit(events []Event) {
	for _, e := range events {
		v.addEvent(e)
	}
	if len(events) == 0 {
		v.notify()
	}
}
