package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	kitetcd "github.com/go-kit/kit/sd/etcdv3"
	"github.com/go-kit/log"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/endpointer"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// scaleSizes are the instance counts of the scale rows; scaleRounds is how
// many times each system is measured on each (rows are medians of rounds).
var scaleSizes = []int{1000, 10000, 100000}

const scaleRounds = 3

// scaleChanges is how many single-record changes each round times.
func scaleChanges(n int) int {
	if n >= 100000 {
		return 8 // go-kit re-reads 100k records per change
	}
	return 20
}

// scaleRound is what one round measured of one system.
type scaleRound struct {
	sync   time.Duration   // constructor start → endpointer holds every instance
	change []time.Duration // record written → endpointer built the new endpoint
	heap   uint64          // heap in use once synced, minus before
}

// benchScale compares, on the same etcd records (the records a registrar
// writes, under a lease), Warren's instancer + endpointer with go-kit's
// sd/etcdv3 instancer + sd.NewEndpointer, measured the same way: the same
// factory (a no-op endpoint that reports each instance it builds), heap
// after the endpointer (the subscriber) holds every instance, sync until
// it does, a change until the factory built the changed instance. The
// full Warren client (balancer, breakers, transports) is measured too.
func benchScale(ctx context.Context, rep *report) error {
	srv, err := embedetcd.Start()
	if err != nil {
		return err
	}
	defer srv.Close()
	writer, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer writer.Close()
	figures := map[int]map[string][]scaleRound{}
	for _, n := range scaleSizes {
		recs, err := writeScaleRecords(ctx, writer, n)
		if err != nil {
			return fmt.Errorf("scale %d: %w", n, err)
		}
		figures[n] = map[string][]scaleRound{}
		for round := range scaleRounds {
			for _, sys := range []struct {
				name string
				run  func(context.Context, *embedetcd.Server, *scaleRecords) (scaleRound, error)
			}{{"warren", warrenScale}, {"go-kit", kitScale}, {"client", clientScale}, {"warren-addr", warrenAddrScale}, {"go-kit-addr", kitAddrScale}} {
				r, err := sys.run(ctx, srv, recs)
				if err != nil {
					recs.drop(ctx)
					return fmt.Errorf("scale %d, %s, round %d: %w", n, sys.name, round+1, err)
				}
				figures[n][sys.name] = append(figures[n][sys.name], r)
			}
		}
		recs.drop(ctx)
	}
	reportScale(rep, figures)
	return nil
}

// scaleRecords is one service's n records in etcd and a way to change one.
type scaleRecords struct {
	w       *clientv3.Client
	service string
	prefix  string
	insts   []registry.Instance
	lease   clientv3.LeaseID
	build   int
}

func writeScaleRecords(ctx context.Context, w *clientv3.Client, n int) (*scaleRecords, error) {
	service := "bench-scale-" + strconv.Itoa(n)
	r := &scaleRecords{w: w, service: service, prefix: "/bench/services/" + service + "/", insts: make([]registry.Instance, n)}
	lease, err := w.Grant(ctx, 3600)
	if err != nil {
		return nil, err
	}
	r.lease = lease.ID
	var ops []clientv3.Op
	for i := range r.insts {
		host := "10." + strconv.Itoa(i/62500) + "." + strconv.Itoa(i/250%250) + "." + strconv.Itoa(i%250+1)
		r.insts[i] = registry.Instance{
			ID: registry.DefaultID(service, host, 8080), Name: service, Endpoints: []string{registry.EndpointURL("http", host, 8080)},
			Zone: "zone-" + strconv.Itoa(i%3), Metadata: map[string]string{"build": "b0"},
		}
		b, err := registry.EncodeRecord(r.insts[i])
		if err != nil {
			return nil, err
		}
		ops = append(ops, clientv3.OpPut(r.prefix+r.insts[i].ID, string(b), clientv3.WithLease(lease.ID)))
		if len(ops) == 128 || i == n-1 { // etcd's default max ops per txn
			if _, err := w.Txn(ctx).Then(ops...).Commit(); err != nil {
				return nil, err
			}
			ops = ops[:0]
		}
	}
	return r, nil
}

// change rewrites instance k's record with a new build, a token found
// in both the stored record and Warren's instance string, which it
// returns with the write to make.
func (r *scaleRecords) change(ctx context.Context, k int) (string, func() error) {
	r.build++
	token := "bx" + strconv.Itoa(r.build) + "x"
	inst := r.insts[k]
	inst.Metadata = map[string]string{"build": token}
	return token, func() error {
		b, err := registry.EncodeRecord(inst)
		if err != nil {
			return err
		}
		_, err = r.w.Put(ctx, r.prefix+inst.ID, string(b), clientv3.WithLease(r.lease))
		return err
	}
}

func (r *scaleRecords) drop(ctx context.Context) {
	_, _ = r.w.Revoke(context.WithoutCancel(ctx), r.lease)
}

// builds is the factory both endpointers use: a no-op endpoint, and every
// instance string it built sent to whoever waits for one.
type builds struct {
	mu   sync.Mutex
	want string
	seen chan struct{}
}

func (b *builds) factory(instance string) (endpoint.Endpoint, io.Closer, error) {
	b.mu.Lock()
	if b.want != "" && strings.Contains(instance, b.want) {
		b.want = ""
		close(b.seen)
	}
	b.mu.Unlock()
	return endpoint.Nop, nil, nil
}

// await arms the factory for token, runs do, and waits until an
// instance string with token was built.
func (b *builds) await(ctx context.Context, token string, do func() error) (time.Duration, error) {
	seen := make(chan struct{})
	b.mu.Lock()
	b.want, b.seen = token, seen
	b.mu.Unlock()
	start := time.Now()
	if err := do(); err != nil {
		return 0, err
	}
	select {
	case <-seen:
		return time.Since(start), nil
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("change %s not built within 30s", token)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// waitCount polls until count() reaches n.
func waitCount(ctx context.Context, n int, count func() int) error {
	deadline := time.Now().Add(60 * time.Second)
	for count() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("synced %d of %d within 60s", count(), n)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Microsecond)
	}
	return nil
}

// changes times scaleChanges single-record changes until b built each.
func changes(ctx context.Context, recs *scaleRecords, b *builds) ([]time.Duration, error) {
	n := len(recs.insts)
	k := scaleChanges(n)
	var out []time.Duration
	for i := range k {
		token, put := recs.change(ctx, i*n/k)
		d, err := b.await(ctx, token, put)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// measured runs one round: build, timed from its start, makes the system
// and returns how many instances its endpointer holds and how to stop it;
// b, when not nil, is the factory it built with, for the change figures.
func measured(ctx context.Context, recs *scaleRecords, b *builds, build func() (count func() int, stop func(), err error)) (scaleRound, error) {
	var r scaleRound
	before := heapInUse()
	start := time.Now()
	count, stop, err := build()
	if err != nil {
		return r, err
	}
	defer stop()
	if err := waitCount(ctx, len(recs.insts), count); err != nil {
		return r, err
	}
	r.sync = time.Since(start)
	r.heap = heapInUse() - min(before, heapInUse())
	if b != nil {
		r.change, err = changes(ctx, recs, b)
	}
	return r, err
}

// warrenDiscovery is the etcd registry Warren's rounds discover through.
func warrenDiscovery(ctx context.Context, srv *embedetcd.Server) (*etcd.Registry, error) {
	return etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix("bench"), etcd.WithInitialWait(60*time.Second))
}

func warrenScale(ctx context.Context, srv *embedetcd.Server, recs *scaleRecords) (scaleRound, error) {
	b := &builds{}
	return warrenSync(ctx, srv, recs, b, b.factory)
}

// warrenSync measures Warren's instancer + endpointer with factory f; b,
// when not nil, is f's builds, for the change figures.
func warrenSync(ctx context.Context, srv *embedetcd.Server, recs *scaleRecords, b *builds, f sd.Factory) (scaleRound, error) {
	disc, err := warrenDiscovery(ctx, srv)
	if err != nil {
		return scaleRound{}, err
	}
	defer disc.Close()
	return measured(ctx, recs, b, func() (func() int, func(), error) {
		in, err := disc.NewInstancer(ctx, recs.service)
		if err != nil {
			return nil, nil, err
		}
		e := endpointer.New(in, f)
		return func() int { return len(e.Targets()) }, func() { e.Close(); in.Stop() }, nil
	})
}

func kitScale(ctx context.Context, srv *embedetcd.Server, recs *scaleRecords) (scaleRound, error) {
	b := &builds{}
	return kitSync(ctx, srv, recs, b, b.factory)
}

// kitSync is warrenSync for go-kit's sd/etcdv3 instancer + sd.NewEndpointer.
func kitSync(ctx context.Context, srv *embedetcd.Server, recs *scaleRecords, b *builds, f sd.Factory) (scaleRound, error) {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel() // go-kit's client has no Close; its context ends it
	cli, err := kitetcd.NewClient(kctx, srv.Endpoints(), kitetcd.ClientOptions{})
	if err != nil {
		return scaleRound{}, err
	}
	return measured(ctx, recs, b, func() (func() int, func(), error) {
		in, err := kitetcd.NewInstancer(cli, recs.prefix, log.NewNopLogger())
		if err != nil {
			return nil, nil, err
		}
		e := sd.NewEndpointer(in, f, log.NewNopLogger())
		return func() int { eps, _ := e.Endpoints(); return len(eps) }, func() { e.Close(); in.Stop() }, nil
	})
}

// clientScale measures Warren's whole client over the instancer: the
// endpointer, P2C, a breaker per instance, transports made on first use.
// Its change figure is not taken (the client's factory is its own).
func clientScale(ctx context.Context, srv *embedetcd.Server, recs *scaleRecords) (scaleRound, error) {
	disc, err := warrenDiscovery(ctx, srv)
	if err != nil {
		return scaleRound{}, err
	}
	defer disc.Close()
	return measured(ctx, recs, nil, func() (func() int, func(), error) {
		in, err := disc.NewInstancer(ctx, recs.service)
		if err != nil {
			return nil, nil, err
		}
		c, err := client.NewFromInstancer(in, recs.service)
		if err != nil {
			in.Stop()
			return nil, nil, err
		}
		return func() int { return len(c.Targets()) }, func() { c.Close(); in.Stop() }, nil
	})
}

// medianOf returns the median of f over rounds.
func medianOf(rs []scaleRound, f func(scaleRound) float64) float64 {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

func reportScale(rep *report, figures map[int]map[string][]scaleRound) {
	const suite = "scale"
	note := fmt.Sprintf("median of %d rounds; same etcd records, same no-op factory", scaleRounds)
	syncMs := func(r scaleRound) float64 { return ms(r.sync) }
	heapKiB := func(r scaleRound) float64 { return float64(r.heap) / 1024 }
	changeP50 := func(r scaleRound) float64 { return ms(percentile(r.change, 50)) }
	triple := func(sys string, f func(scaleRound) float64) string {
		var parts []string
		for _, n := range scaleSizes {
			parts = append(parts, formatValue(medianOf(figures[n][sys], f)))
		}
		return strings.Join(parts, " / ")
	}
	at := func(n int, sys string, f func(scaleRound) float64) float64 { return medianOf(figures[n][sys], f) }
	for _, m := range []struct {
		name, unit string
		f          func(scaleRound) float64
	}{{"full sync", "ms", syncMs}, {"change→endpointer p50", "ms", changeP50}, {"instancer+endpointer heap", "KiB", heapKiB}} {
		rep.add(row{Suite: suite, Metric: m.name + " 1k / 10k / 100k (warren)", Unit: m.unit, Note: triple("warren", m.f)})
		rep.add(row{Suite: suite, Metric: m.name + " 1k / 10k / 100k (go-kit)", Unit: m.unit, Note: triple("go-kit", m.f)})
	}
	rep.add(row{Suite: suite, Metric: "full client heap 1k / 10k / 100k (warren)", Unit: "KiB", Note: triple("client", heapKiB)})
	rep.add(row{Suite: suite, Metric: "full client sync 1k / 10k / 100k (warren)", Unit: "ms", Note: triple("client", syncMs)})

	c1, c10 := at(1000, "warren", changeP50), at(10000, "warren", changeP50)
	rep.judged(row{Suite: suite, Metric: "10k: change→endpointer p50 (warren)", Value: c10, Unit: "ms",
		Goal: fmt.Sprintf("≤ 1 ms and ≤ 2× 1k (%.3f ms)", 2*c1), Note: note + fmt.Sprintf("; go-kit %.2f ms", at(10000, "go-kit", changeP50))},
		c10 <= 1 && c10 <= 2*c1)
	wh, kh := at(10000, "warren", heapKiB), at(10000, "go-kit", heapKiB)
	rep.judged(row{Suite: suite, Metric: "10k: instancer+endpointer heap (warren)", Value: wh / 1024, Unit: "MiB",
		Goal: fmt.Sprintf("≤ go-kit (%.2f MiB)", kh/1024), Note: note + "; heap after the endpointer holds every instance"}, wh <= kh)
	ch := at(10000, "client", heapKiB)
	rep.judged(row{Suite: suite, Metric: "10k: full client heap (warren)", Value: ch / 1024, Unit: "MiB",
		Goal: "≤ 10 MiB", Note: note + "; P2C, breakers, transports on first call"}, ch <= 10*1024)
	reportAddrScale(rep, func(sys string) string { return triple(sys, syncMs) }, at(10000, "warren-addr", syncMs), at(10000, "go-kit-addr", syncMs))
	ws, ks := at(10000, "warren", syncMs), at(10000, "go-kit", syncMs)
	rep.judged(row{Suite: suite, Metric: "10k: full sync to a usable endpointer (warren)", Value: ws, Unit: "ms",
		Goal: fmt.Sprintf("≤ go-kit (%.2f ms)", ks), Note: note}, ws <= ks)
}
