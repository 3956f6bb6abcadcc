package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/go-kit/kit/sd"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// etcdSamples is how many timed round trips each propagation figure has.
const etcdSamples = 1000

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

	const warmup = 20
	var rawPut, rawDel, up, down []time.Duration
	val := `{"v":1}`
	for i := range warmup + etcdSamples {
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

		if i >= warmup {
			rawPut, rawDel = append(rawPut, dPut), append(rawDel, dDel)
			up, down = append(up, dUp), append(down, dDown)
		}
	}

	const suite = "etcd-propagation"
	note := fmt.Sprintf("n=%d, embedded etcd on loopback", etcdSamples)
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"raw put→watch event", rawPut}, {"raw delete→watch event", rawDel}} {
		rep.add(row{Suite: suite, Metric: m.name + " p50", Value: ms(percentile(m.ds, 50)), Unit: "ms", Note: note})
		rep.add(row{Suite: suite, Metric: m.name + " p99", Value: ms(percentile(m.ds, 99)), Unit: "ms", Note: note})
	}
	rep.add(row{Suite: suite, Metric: "register→event p50", Value: ms(percentile(up, 50)), Unit: "ms", Note: "grant + claim txn + watch"})
	upGoal := 2 * percentile(rawPut, 99)
	rep.judged(row{Suite: suite, Metric: "register→event p99", Value: ms(percentile(up, 99)), Unit: "ms",
		Goal: fmt.Sprintf("≤ 2× raw put p99 (%.2f ms)", ms(upGoal))}, percentile(up, 99) <= upGoal)
	rep.add(row{Suite: suite, Metric: "deregister→event p50", Value: ms(percentile(down, 50)), Unit: "ms", Note: "delete guarded by our lease + watch"})
	downGoal := percentile(rawDel, 99) * 3 / 2
	rep.judged(row{Suite: suite, Metric: "deregister→event p99", Value: ms(percentile(down, 99)), Unit: "ms",
		Goal: fmt.Sprintf("≤ 1.5× raw delete p99 (%.2f ms)", ms(downGoal))}, percentile(down, 99) <= downGoal)
	return nil
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
