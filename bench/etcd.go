package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/kit/sd"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// etcdSamples is how many timed round trips each propagation figure has
// per round, and etcdRounds how many rounds the suite runs.
const (
	etcdSamples = 1000
	etcdRounds  = 3
)

// benchEtcdPropagation measures, against one embedded etcd on loopback:
//
//   - raw etcd: a Put (and a Delete) on one client until the watch event
//     arrives on another client — the floor any registry on etcd sits on;
//   - Warren: Register (and Deregister) on one Registry until the event on
//     an instancer of another Registry;
//
// Raw and Warren samples are interleaved so both see the same machine load.
func benchEtcdPropagation(ctx context.Context, rep *report) error {
	srv, err := embedetcd.Start()
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := etcdPropagation(ctx, rep, srv); err != nil {
		return err
	}
	return nil
}

func etcdPropagation(ctx context.Context, rep *report, srv *embedetcd.Server) error {
	writer, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer writer.Close()
	watcher, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer watcher.Close()
	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	wch := watcher.Watch(wctx, "/raw/", clientv3.WithPrefix())

	reg, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix("bench"))
	if err != nil {
		return err
	}
	defer reg.Close()
	disc, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix("bench"))
	if err != nil {
		return err
	}
	defer disc.Close()
	in, err := disc.NewInstancer(ctx, "bench-prop")
	if err != nil {
		return err
	}
	defer in.Stop()
	sub := subscribe(in)
	defer sub.close()

	inst := registry.Instance{ID: "bench-prop-1", Name: "bench-prop", Endpoints: []string{"http://127.0.0.1:8080"}}
	want := inst.String()
	if err := sub.await(ctx, func(ev sd.Event) bool { return ev.Err == nil && !slices.Contains(ev.Instances, want) }); err != nil {
		return err
	}
	rawEvent := func(key string, typ mvccpb.Event_EventType) error {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case wr := <-wch:
				if err := wr.Err(); err != nil {
					return err
				}
				for _, ev := range wr.Events {
					if string(ev.Kv.Key) == key && ev.Type == typ {
						return nil
					}
				}
			case <-deadline:
				return fmt.Errorf("no raw watch event for %s within 10s", key)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	// Each round's p99 is compared with the raw floor of the same round,
	// and the goal judged on the median of those ratios: a p99 is the
	// tail of 1000 samples, and one burst of outside load in one round
	// should not decide the row (issue 19: judged rows run ≥ 3 rounds).
	const warmup = 20
	var rounds []etcdRound
	val := `{"v":1}`
	for round := range etcdRounds {
		var r etcdRound
		n := etcdSamples
		if round == 0 {
			n += warmup
		}
		for i := range n {
			key := "/raw/" + strconv.Itoa(i%8)
			start := time.Now()
			if _, err := writer.Put(ctx, key, val); err != nil {
				return err
			}
			if err := rawEvent(key, clientv3.EventTypePut); err != nil {
				return err
			}
			dPut := time.Since(start)

			start = time.Now()
			if _, err := writer.Delete(ctx, key); err != nil {
				return err
			}
			if err := rawEvent(key, clientv3.EventTypeDelete); err != nil {
				return err
			}
			dDel := time.Since(start)

			start = time.Now()
			if err := reg.Register(ctx, inst); err != nil {
				return err
			}
			if err := sub.await(ctx, func(ev sd.Event) bool { return slices.Contains(ev.Instances, want) }); err != nil {
				return err
			}
			dUp := time.Since(start)

			start = time.Now()
			if err := reg.Deregister(ctx, inst); err != nil {
				return err
			}
			if err := sub.await(ctx, func(ev sd.Event) bool { return !slices.Contains(ev.Instances, want) }); err != nil {
				return err
			}
			dDown := time.Since(start)

			if round > 0 || i >= warmup {
				r.rawPut, r.rawDel = append(r.rawPut, dPut), append(r.rawDel, dDel)
				r.up, r.down = append(r.up, dUp), append(r.down, dDown)
			}
		}
		rounds = append(rounds, r)
	}

	const suite = "etcd-propagation"
	note := fmt.Sprintf("n=%d per round, %d rounds, median of the rounds; embedded etcd on loopback", etcdSamples, etcdRounds)
	series := []struct {
		name string
		ds   func(etcdRound) []time.Duration
	}{
		{"raw put→watch event", func(r etcdRound) []time.Duration { return r.rawPut }},
		{"raw delete→watch event", func(r etcdRound) []time.Duration { return r.rawDel }},
		{"register→event", func(r etcdRound) []time.Duration { return r.up }},
		{"deregister→event", func(r etcdRound) []time.Duration { return r.down }},
	}
	for _, m := range series {
		for _, p := range []float64{50, 99} {
			rep.add(row{Suite: suite, Metric: fmt.Sprintf("%s p%.0f", m.name, p), Unit: "ms", Note: note,
				Value: median(roundValues(rounds, func(r etcdRound) float64 { return ms(percentile(m.ds(r), p)) }))})
		}
	}
	for _, g := range []struct {
		metric     string
		ours, raw  func(etcdRound) []time.Duration
		limit      float64
		goal, what string
	}{
		{"register→event p99 / raw put p99", series[2].ds, series[0].ds, 2, "≤ 2×", "grant + claim txn + watch"},
		{"deregister→event p99 / raw delete p99", series[3].ds, series[1].ds, 1.5, "≤ 1.5×", "delete guarded by our lease + watch"},
	} {
		ratios := roundValues(rounds, func(r etcdRound) float64 {
			return float64(percentile(g.ours(r), 99)) / float64(percentile(g.raw(r), 99))
		})
		v := median(ratios)
		rep.judged(row{Suite: suite, Metric: g.metric, Value: v, Unit: "×", Goal: g.goal,
			Note: fmt.Sprintf("%s; median of %d rounds' ratios (%s)", g.what, etcdRounds, fmtRatios(ratios))}, v <= g.limit)
	}
	return nil
}

// etcdRound is one round's samples of the etcd-propagation suite.
type etcdRound struct{ rawPut, rawDel, up, down []time.Duration }

// roundValues is f of each round, in order.
func roundValues[R any](rounds []R, f func(R) float64) []float64 {
	vs := make([]float64, len(rounds))
	for i, r := range rounds {
		vs[i] = f(r)
	}
	return vs
}

// fmtRatios lists ratios as "1.02, 0.98, 1.10".
func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strings.Join(parts, ", ")
}

func scaleLabel(n int) string {
	if n >= 1000 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// heapInUse returns live heap bytes after a full collection. The embedded
// etcd shares the process, so the figure is a delta taken around one step.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// subscription buffers an instancer's events. The cache sends
// synchronously, so the buffer is large enough for every event a suite
// causes between two reads, and close keeps draining until Deregister has
// returned. await reads the channel itself, so the figures include no
// hand-off the instancer does not impose.
type subscription struct {
	in     sd.Instancer
	events chan sd.Event
}

func subscribe(in sd.Instancer) *subscription {
	s := &subscription{in: in, events: make(chan sd.Event, 1024)}
	in.Register(s.events)
	return s
}

// await reads events until one satisfies ok.
func (s *subscription) await(ctx context.Context, ok func(sd.Event) bool) error {
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if ok(ev) {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no matching event within 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close deregisters while still draining.
func (s *subscription) close() {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-s.events:
			case <-done:
				return
			}
		}
	}()
	s.in.Deregister(s.events)
	close(done)
}
