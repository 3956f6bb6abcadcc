package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/go-kit/kit/sd"
	kitetcd "github.com/go-kit/kit/sd/etcdv3"
	"github.com/go-kit/log"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// etcdSamples is how many timed round trips each propagation figure has.
const etcdSamples = 1000

// etcdScales are the instance counts of the scale rows.
var etcdScales = []int{10, 1000, 10000}

// benchEtcdPropagation measures, against one embedded etcd on loopback:
//
//   - raw etcd: a Put (and a Delete) on one client until the watch event
//     arrives on another client — the floor any registry on etcd sits on;
//   - Warren: Register (and Deregister) on one Registry until the event on
//     an instancer of another Registry;
//   - scale: for 10, 1k and 10k instances, full sync time, one change →
//     event, and client heap, for Warren's instancer and go-kit's
//     sd/etcdv3 instancer (which re-reads the whole prefix on every change).
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
	for _, n := range etcdScales {
		if err := etcdScale(ctx, rep, srv, n); err != nil {
			return fmt.Errorf("scale %d: %w", n, err)
		}
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

// etcdScale fills the prefix with n instances and compares Warren's
// instancer with go-kit's on full sync, change latency and heap.
func etcdScale(ctx context.Context, rep *report, srv *embedetcd.Server, n int) error {
	const changes = 20
	service := "bench-scale-" + strconv.Itoa(n)
	writer, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer writer.Close()
	prefix := "/bench/services/" + service + "/"
	insts := make([]registry.Instance, n)
	// Under a lease, as a registrar writes them: Warren's instancer skips
	// records without one.
	lease, err := writer.Grant(ctx, 3600)
	if err != nil {
		return err
	}
	defer writer.Revoke(context.WithoutCancel(ctx), lease.ID)
	var ops []clientv3.Op
	for i := range insts {
		host := "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1)
		insts[i] = registry.Instance{
			ID: registry.DefaultID(service, host, 8080), Name: service, Endpoints: []string{registry.EndpointURL("http", host, 8080)},
			Zone: "zone-" + strconv.Itoa(i%3), Metadata: map[string]string{"build": "1"},
		}
		b, err := registry.EncodeRecord(insts[i])
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(prefix+insts[i].ID, string(b), clientv3.WithLease(lease.ID)))
		if len(ops) == 128 || i == n-1 { // etcd's default max ops per txn
			if _, err := writer.Txn(ctx).Then(ops...).Commit(); err != nil {
				return err
			}
			ops = ops[:0]
		}
	}
	defer writer.Delete(context.WithoutCancel(ctx), prefix, clientv3.WithPrefix())

	// change rewrites instance k's record with a new build and returns the
	// stored value and the instance string that should now show up.
	build := 1
	change := func(k int) (string, string, error) {
		build++
		inst := insts[k]
		inst.Metadata = map[string]string{"build": strconv.Itoa(build)}
		b, err := registry.EncodeRecord(inst)
		if err != nil {
			return "", "", err
		}
		_, err = writer.Put(ctx, prefix+inst.ID, string(b), clientv3.WithLease(lease.ID))
		return string(b), inst.String(), err
	}

	// Warren.
	var warrenSync time.Duration
	var warrenChanges []time.Duration
	var warrenBytes uint64
	{
		disc, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix("bench"), etcd.WithInitialWait(30*time.Second))
		if err != nil {
			return err
		}
		before := heapInUse()
		start := time.Now()
		in, err := disc.NewInstancer(ctx, service)
		if err != nil {
			disc.Close()
			return err
		}
		warrenSync = time.Since(start)
		if got := len(in.State().Instances); got != n {
			in.Stop()
			disc.Close()
			return fmt.Errorf("warren instancer synced %d of %d", got, n)
		}
		warrenBytes = heapInUse() - min(before, heapInUse())
		sub := subscribe(in)
		for i := range changes {
			start := time.Now()
			_, want, err := change(i * n / changes)
			if err == nil {
				err = sub.await(ctx, func(ev sd.Event) bool { return slices.Contains(ev.Instances, want) })
			}
			if err != nil {
				sub.close()
				in.Stop()
				disc.Close()
				return err
			}
			warrenChanges = append(warrenChanges, time.Since(start))
		}
		sub.close()
		in.Stop()
		disc.Close()
	}

	// go-kit sd/etcdv3, measured here only for comparison.
	var kitSync time.Duration
	var kitChanges []time.Duration
	var kitBytes uint64
	{
		kctx, cancel := context.WithCancel(ctx)
		client, err := kitetcd.NewClient(kctx, srv.Endpoints(), kitetcd.ClientOptions{})
		if err != nil {
			cancel()
			return err
		}
		before := heapInUse()
		start := time.Now()
		in, err := kitetcd.NewInstancer(client, prefix, log.NewNopLogger())
		if err != nil {
			cancel()
			return err
		}
		kitSync = time.Since(start)
		sub := subscribe(in)
		if err := sub.await(ctx, func(ev sd.Event) bool { return len(ev.Instances) == n }); err != nil {
			sub.close()
			in.Stop()
			cancel()
			return err
		}
		kitBytes = heapInUse() - min(before, heapInUse())
		for i := range changes {
			start := time.Now()
			want, _, err := change(i * n / changes)
			if err == nil {
				err = sub.await(ctx, func(ev sd.Event) bool { return slices.Contains(ev.Instances, want) })
			}
			if err != nil {
				sub.close()
				in.Stop()
				cancel()
				return err
			}
			kitChanges = append(kitChanges, time.Since(start))
		}
		sub.close()
		in.Stop()
		cancel() // go-kit's client has no Close; its context ends it
	}

	const suite = "etcd-propagation"
	label := scaleLabel(n)
	note := "go-kit sd/etcdv3 for comparison"
	rep.add(row{Suite: suite, Metric: "full sync " + label + " (warren)", Value: ms(warrenSync), Unit: "ms"})
	rep.add(row{Suite: suite, Metric: "full sync " + label + " (go-kit)", Value: ms(kitSync), Unit: "ms", Note: note})
	rep.add(row{Suite: suite, Metric: "change→event p50 " + label + " (warren)", Value: ms(percentile(warrenChanges, 50)), Unit: "ms",
		Note: fmt.Sprintf("n=%d, event applied to a map", changes)})
	rep.add(row{Suite: suite, Metric: "change→event p50 " + label + " (go-kit)", Value: ms(percentile(kitChanges, 50)), Unit: "ms",
		Note: fmt.Sprintf("n=%d, re-reads the prefix per change", changes)})
	rep.add(row{Suite: suite, Metric: "client heap " + label + " (warren)", Value: float64(warrenBytes) / 1024, Unit: "KiB", Note: "heap in use after sync, minus before"})
	rep.add(row{Suite: suite, Metric: "client heap " + label + " (go-kit)", Value: float64(kitBytes) / 1024, Unit: "KiB", Note: note})
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
