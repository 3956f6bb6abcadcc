package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/sd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	etcdresolver "go.etcd.io/etcd/client/v3/naming/resolver"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpcresolver"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/retry"
)

const roundRobinConfig = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// benchGRPCPath measures Warren's gRPC call path against the floor: the
// same unary call (a StringValue echo) to 3 loopback grpc-go servers at
// the same concurrency, through (1) grpcclient (P2C, retries with a budget,
// ejection, the concurrency limit, a go-kit grpctransport.Client per
// method and instance, a ClientConn per instance; its defaults) and (2) one raw grpc-go ClientConn with
// round_robin over the same 3 addresses. Rounds alternate the contenders,
// as the HTTP request-path suite does.
func benchGRPCPath(ctx context.Context, rep *report) error {
	var servers []*grpc.Server
	var served sync.WaitGroup
	var instances []string
	var addrs []resolver.Address
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
		served.Wait()
	}()
	for i := range reqPathInstances {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s := grpc.NewServer()
		grpctest.Register(s, strconv.Itoa(i))
		servers = append(servers, s)
		served.Go(func() { _ = s.Serve(ln) })
		port := ln.Addr().(*net.TCPAddr).Port
		instances = append(instances, registry.Instance{
			ID: registry.DefaultID("bench", "127.0.0.1", port), Name: "bench", Endpoints: []string{registry.EndpointURL("grpc", "127.0.0.1", port)},
		}.String())
		addrs = append(addrs, resolver.Address{Addr: ln.Addr().String()})
	}

	ours, err := grpcclient.NewFromInstancer(sd.FixedInstancer(instances), "bench")
	if err != nil {
		return err
	}
	defer ours.Close()
	oursCall := sayThrough(ours)

	// The same method marked idempotent, on a client of its own: the
	// adaptive per-attempt deadline and an armed hedge, as for any
	// idempotent method by default (the call above gets neither).
	idemPolicy, err := retry.New() // the defaults, held to count its hedges
	if err != nil {
		return err
	}
	idem, err := grpcclient.NewFromInstancer(sd.FixedInstancer(instances), "bench", grpcclient.WithClientOptions(client.WithRetryPolicy(idemPolicy)))
	if err != nil {
		return err
	}
	defer idem.Close()
	idemCall := sayThrough(idem, grpcclient.Idempotent())

	mr := manual.NewBuilderWithScheme("bench")
	mr.InitialState(resolver.State{Addresses: addrs})
	raw, err := grpc.NewClient("bench:///bench", grpc.WithResolvers(mr), grpc.WithDefaultServiceConfig(roundRobinConfig),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer raw.Close()
	rawCall := func(ctx context.Context, req benchReq) (benchResp, error) {
		out, err := grpctest.Say(ctx, raw, encodeBench(req))
		if err != nil {
			return benchResp{}, err
		}
		return decodeBench(out)
	}
	if err := waitReady(ctx, raw); err != nil {
		return err
	}

	cs := []*contender{{name: "warren-grpc", call: oursCall}, {name: "grpc-go round_robin", call: rawCall}}
	if err := measureRounds(ctx, cs); err != nil {
		return err
	}
	const suite = "grpc-path"
	note := fmt.Sprintf("%d loopback grpc-go servers, %d concurrent, %dB string, %d×%s", reqPathInstances, reqPathConcurrency, reqPathPayload, reqPathRounds, reqPathRound)
	addContenderRows(rep, suite, note, cs)
	w, base := cs[0], cs[1]
	cpu := w.res.cpuPerCall() / base.res.cpuPerCall()
	p99 := float64(percentile(w.res.lat, 99)) / float64(percentile(base.res.lat, 99))
	rep.judged(row{Suite: suite, Metric: "warren/raw CPU per call", Value: cpu, Unit: "×", Goal: "≤ 1.05× raw", Note: "client + server CPU"}, cpu <= 1.05)
	rep.add(row{Suite: suite, Metric: "warren/raw p99", Value: p99, Unit: "×", Note: "all rounds pooled"})
	rep.add(row{Suite: suite, Metric: "warren/raw throughput", Value: medianRatio(w.rounds, base.rounds, func(l loadResult) float64 { return l.rate() }), Unit: "×", Note: "median of per-round ratios"})
	if err := callErrors(cs); err != nil {
		return err
	}

	// The idempotent call, in rounds of its own (the rows above keep their
	// contenders), beside raw calls that each carry a deadline too, as
	// deadlines should be set: a deadline sent with a call costs both ends
	// (grpc-timeout, a timer for the server's handler context).
	ts := []*contender{{name: "grpc-go round_robin", call: rawCall},
		{name: "grpc-go round_robin+deadline", call: func(ctx context.Context, req benchReq) (benchResp, error) {
			ctx, cancel := context.WithTimeout(ctx, reqPathDeadline)
			defer cancel()
			return rawCall(ctx, req)
		}},
		{name: "warren-grpc-idempotent", call: idemCall}}
	if err := measureRounds(ctx, ts); err != nil {
		return err
	}
	addContenderRows(rep, suite+" timed", "second set of rounds: "+note, ts[1:])
	ratio := func(a, b *contender) float64 { return a.res.cpuPerCall() / b.res.cpuPerCall() }
	rep.add(row{Suite: suite, Metric: "raw+deadline/raw CPU per call", Value: ratio(ts[1], ts[0]), Unit: "×",
		Note: fmt.Sprintf("raw grpc-go, each call under context.WithTimeout(%s); second set of rounds", reqPathDeadline)})
	rep.add(row{Suite: suite, Metric: "warren-idempotent/raw CPU per call", Value: ratio(ts[2], ts[0]), Unit: "×",
		Note: fmt.Sprintf("the defaults of an idempotent call: adaptive deadline + hedging; %d hedges sent in %d calls", idemPolicy.Hedges(), ts[2].res.n)})
	rep.add(row{Suite: suite, Metric: "warren-idempotent/raw+deadline CPU per call", Value: ratio(ts[2], ts[1]), Unit: "×", Note: "both sides pay a deadline per call"})
	return callErrors(ts)
}

// sayThrough is a contender's call of the echo method through c's
// generated-style endpoint (the path a generated gRPC client takes).
func sayThrough(c *grpcclient.Client, opts ...grpcclient.EndpointOption) func(context.Context, benchReq) (benchResp, error) {
	ep := grpcclient.NewEndpoint(c, grpctest.SayMethod,
		func(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil },
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{}, opts...)
	return func(ctx context.Context, req benchReq) (benchResp, error) {
		out, err := ep(ctx, encodeBench(req))
		if err != nil {
			return benchResp{}, err
		}
		return decodeBench(out.(string))
	}
}

func encodeBench(r benchReq) string { return strconv.Itoa(r.ID) + ":" + r.Text }

func decodeBench(s string) (benchResp, error) {
	id, text, ok := strings.Cut(s, ":")
	n, err := strconv.Atoi(id)
	if !ok || err != nil {
		return benchResp{}, fmt.Errorf("bad echo %q", s)
	}
	return benchResp{ID: n, Text: text}, nil
}

// waitReady connects cc and waits until it is READY (round_robin only
// uses READY subchannels; the first calls would otherwise wait).
func waitReady(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			return fmt.Errorf("gRPC connection not ready within 30s (%s)", s)
		}
	}
	return nil
}

// resolverRounds rounds of resolverSamples samples each (after 3
// warm-ups) per system; the judged figure is the median of the rounds'
// ratios. Seven rounds, not three: with three, runs of the same code on
// the loaded machine spread 0.94–1.20× (six runs), 1.02–1.10× (four).
const (
	resolverRounds  = 7
	resolverSamples = 30
)

// benchGRPCResolver measures how long a new instance takes to get its
// first call from a plain grpc-go client with round_robin: from the
// registration's start to that call's answer, over one embedded etcd,
// through (1) Warren's warren:/// resolver over the etcd registry (the
// App's record; Registrar.Register: a lease, the claim, then the lease
// kept alive) and (2) etcd's own naming resolver (endpoints.Manager +
// etcd:///, go.etcd.io/etcd/client/v3/naming; the endpoint under a fresh
// lease, as a registration that must vanish with its process needs). Both
// registrations then hold their record alike — the lease kept alive, the
// record's own key watched — so etcd and the one process carry the same
// load on both sides while the event travels to the resolver. Each
// sample is a fresh service the client has been waiting on with
// WaitForReady, so both measure registry write → watch → resolver update →
// subchannel connect → call. The two alternate which goes first, and each
// sample's registration is withdrawn (Warren: Deregister; etcd: the lease
// revoked) outside the timing, so neither side's leftovers load the
// other's samples.
func benchGRPCResolver(ctx context.Context, rep *report) error {
	srv, err := embedetcd.Start()
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	grpctest.Register(gs, "new")
	go func() { _ = gs.Serve(ln) }() // stopped below
	defer gs.Stop()
	port := ln.Addr().(*net.TCPAddr).Port

	reg, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix("benchres"))
	if err != nil {
		return err
	}
	defer reg.Close()
	disc, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix("benchres"))
	if err != nil {
		return err
	}
	defer disc.Close()
	wb, err := grpcresolver.NewBuilder(disc)
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	writer, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer writer.Close()
	eb, err := etcdresolver.NewBuilder(cli)
	if err != nil {
		return err
	}

	// sample dials target, starts a call that waits for an instance, runs
	// register and returns the time from register's start to the answer,
	// and to register's return.
	sample := func(target string, b resolver.Builder, register func() error) (total, write, update time.Duration, err error) {
		sb := &stampBuilder{Builder: b}
		cc, err := grpc.NewClient(target, grpc.WithResolvers(sb), grpc.WithDefaultServiceConfig(roundRobinConfig),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return 0, 0, 0, err
		}
		defer cc.Close()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		answered := make(chan error, 1)
		cc.Connect()
		time.Sleep(50 * time.Millisecond) // the resolver has its (empty) first answer
		start := time.Now()
		go func() { _, err := grpctest.Say(cctx, cc, "id", grpc.WaitForReady(true)); answered <- err }()
		if err := register(); err != nil {
			return 0, 0, 0, err
		}
		write = time.Since(start)
		if err := <-answered; err != nil {
			return 0, 0, 0, err
		}
		total = time.Since(start)
		if at := sb.at.Load(); at != nil {
			update = at.Sub(start)
		}
		return total, write, update, nil
	}
	ours := func(svc string) (total, write, update time.Duration, err error) {
		inst := registry.Instance{ID: svc + "-1", Name: svc, Endpoints: []string{registry.EndpointURL("grpc", "127.0.0.1", port)}}
		total, write, update, err = sample("warren:///"+svc, wb, func() error { return reg.Register(ctx, inst) })
		if err != nil {
			return 0, 0, 0, fmt.Errorf("warren resolver: %w", err)
		}
		return total, write, update, reg.Deregister(ctx, inst)
	}
	theirs := func(svc string) (total, write, update time.Duration, err error) {
		em, err := endpoints.NewManager(writer, "etcdres/"+svc)
		if err != nil {
			return 0, 0, 0, err
		}
		var lease clientv3.LeaseID
		hctx, stopHold := context.WithCancel(clientv3.WithRequireLeader(ctx))
		var holding sync.WaitGroup
		total, write, update, err = sample("etcd:///etcdres/"+svc, eb, func() error {
			// With a lease, as a registration that must vanish with its
			// process needs (Warren's record has one too).
			l, err := writer.Grant(ctx, 10)
			if err != nil {
				return err
			}
			lease = l.ID
			key := "etcdres/" + svc + "/1"
			if err := em.AddEndpoint(ctx, key, endpoints.Endpoint{Addr: ln.Addr().String()}, clientv3.WithLease(l.ID)); err != nil {
				return err
			}
			// Then held the way Warren's registration holds its record once
			// Register has written it: the lease kept alive and the record's
			// own key watched. Without this the etcd side left etcd and the
			// process idle while its event travelled, and Warren's side
			// alone paid for its hold's first keepalive and watch set-up
			// (about 0.1 ms of the write → resolver update split).
			// Like Warren's keeper, a goroutine of its own does it.
			holding.Add(1)
			go func() { // ends when stopHold closes both channels
				defer holding.Done()
				ka, err := writer.KeepAlive(hctx, l.ID)
				if err != nil {
					return
				}
				wch := writer.Watch(hctx, key)
				for ka != nil || wch != nil {
					select {
					case _, ok := <-ka:
						if !ok {
							ka = nil
						}
					case _, ok := <-wch:
						if !ok {
							wch = nil
						}
					}
				}
			}()
			return nil
		})
		stopHold()
		holding.Wait()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("etcd naming resolver: %w", err)
		}
		_, err = writer.Revoke(ctx, lease)
		return total, write, update, err
	}

	var oursT, theirsT, oursW, theirsW, oursU, theirsU []time.Duration
	var ratios []float64
	for round := range resolverRounds {
		var ot, tt, ow, tw []time.Duration
		for i := range resolverSamples + 3 { // 3 warm-ups
			svc := fmt.Sprintf("prop-%d-%d", round, i)
			first, second := ours, theirs
			if i%2 == 1 {
				first, second = theirs, ours
			}
			d1, w1, u1, err := first(svc)
			if err != nil {
				return err
			}
			d2, w2, u2, err := second(svc)
			if err != nil {
				return err
			}
			if i%2 == 1 {
				d1, w1, u1, d2, w2, u2 = d2, w2, u2, d1, w1, u1
			}
			if i >= 3 {
				ot, tt = append(ot, d1), append(tt, d2)
				ow, tw = append(ow, w1), append(tw, w2)
				oursU, theirsU = append(oursU, u1), append(theirsU, u2)
			}
		}
		ratios = append(ratios, float64(percentile(ot, 50))/float64(percentile(tt, 50)))
		oursT, theirsT = append(oursT, ot...), append(theirsT, tt...)
		oursW, theirsW = append(oursW, ow...), append(theirsW, tw...)
	}
	const suite = "grpc-resolver"
	note := fmt.Sprintf("register → first call answered, %d rounds × %d samples, embedded etcd, round_robin", resolverRounds, resolverSamples)
	rep.add(row{Suite: suite, Metric: "warren:/// median", Value: ms(percentile(oursT, 50)), Unit: "ms", Note: note})
	rep.add(row{Suite: suite, Metric: "warren:/// p99", Value: ms(percentile(oursT, 99)), Unit: "ms"})
	rep.add(row{Suite: suite, Metric: "warren:/// registration write median", Value: ms(percentile(oursW, 50)), Unit: "ms", Note: "Registrar.Register: lease, conflict check, put"})
	rep.add(row{Suite: suite, Metric: "etcd naming median", Value: ms(percentile(theirsT, 50)), Unit: "ms"})
	rep.add(row{Suite: suite, Metric: "etcd naming registration write median", Value: ms(percentile(theirsW, 50)), Unit: "ms", Note: "Grant + AddEndpoint"})
	rep.add(row{Suite: suite, Metric: "etcd naming p99", Value: ms(percentile(theirsT, 99)), Unit: "ms"})
	after := func(total, write []time.Duration) []time.Duration {
		out := make([]time.Duration, len(total))
		for i := range total {
			out[i] = total[i] - write[i]
		}
		return out
	}
	oa, ta := percentile(after(oursT, oursW), 50), percentile(after(theirsT, theirsW), 50)
	rep.add(row{Suite: suite, Metric: "warren/etcd naming, write's return → call", Value: float64(oa) / float64(ta), Unit: "×",
		Note: fmt.Sprintf("watch → resolver → connect → call: %.2f vs %.2f ms", ms(oa), ms(ta))})
	ou, tu := percentile(after(oursU, oursW), 50), percentile(after(theirsU, theirsW), 50)
	rep.add(row{Suite: suite, Metric: "warren/etcd naming, write's return → resolver update", Value: float64(ou) / float64(tu), Unit: "×",
		Note: fmt.Sprintf("watch event → resolver's UpdateState: %.2f vs %.2f ms", ms(ou), ms(tu))})
	ov, tv := percentile(after(oursT, oursU), 50), percentile(after(theirsT, theirsU), 50)
	rep.add(row{Suite: suite, Metric: "warren/etcd naming, resolver update → call", Value: float64(ov) / float64(tv), Unit: "×",
		Note: fmt.Sprintf("grpc-go: subchannel connect → round_robin picker → call: %.2f vs %.2f ms", ms(ov), ms(tv))})
	rep.add(row{Suite: suite, Metric: "warren/etcd naming, registration write", Value: float64(percentile(oursW, 50)) / float64(percentile(theirsW, 50)), Unit: "×"})
	ratio := median(ratios)
	rounds := make([]string, len(ratios))
	for i, r := range ratios {
		rounds[i] = fmt.Sprintf("%.2f", r)
	}
	rep.judged(row{Suite: suite, Metric: "warren/etcd naming median", Value: ratio, Unit: "×", Goal: "≤ 1×",
		Note: "median of the rounds' median ratios: " + strings.Join(rounds, ", ")}, ratio <= 1)
	return nil
}

// stampBuilder wraps a resolver.Builder to note when its resolver first
// passes on a non-empty state, the same way for both resolvers.
type stampBuilder struct {
	resolver.Builder
	at atomic.Pointer[time.Time]
}

func (b *stampBuilder) Build(t resolver.Target, cc resolver.ClientConn, o resolver.BuildOptions) (resolver.Resolver, error) {
	return b.Builder.Build(t, &stampConn{ClientConn: cc, b: b}, o)
}

type stampConn struct {
	resolver.ClientConn
	b *stampBuilder
}

func (c *stampConn) UpdateState(s resolver.State) error {
	if len(s.Addresses) > 0 || len(s.Endpoints) > 0 {
		now := time.Now()
		c.b.at.CompareAndSwap(nil, &now)
	}
	return c.ClientConn.UpdateState(s)
}
