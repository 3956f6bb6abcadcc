package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"
	kithttp "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// Request-path settings: the same for every contender.
const (
	reqPathInstances   = 3
	reqPathConcurrency = 32
	reqPathRounds      = 30                     // each contender runs once per round, order rotating
	reqPathRound       = 100 * time.Millisecond // per contender per round: 3s each in all
	reqPathWarmup      = 25 * time.Millisecond  // per contender per round, not measured
	reqPathPayload     = 256                    // bytes of text in the request body
	reqPathDeadline    = time.Second            // the timed contenders' per-call (or per-attempt) deadline
)

type benchReq struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

type benchResp struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

// benchRequestPath measures what Warren's client costs on the request
// path: the same POST with a JSON body to 3 loopback instances at the same
// concurrency, through (1) Warren's client with its defaults (a POST: no
// per-attempt deadline, no hedge), the same with a fixed per-attempt
// timeout, and the same marked idempotent (the adaptive deadline and hedging
// a GET gets by default), (2) raw net/http with hand-rolled round robin, the
// floor, and (3) go-kit's own stack: sd.FixedInstancer + sd.NewEndpointer +
// lb.NewRoundRobin + lb.Retry over transport/http clients. Every contender
// gets the same tuned transport settings, so connection reuse is not what is
// being compared. Rounds alternate the contenders so drift on the shared 2
// cores lands on all of them.
func benchRequestPath(ctx context.Context, rep *report) error {
	var servers []*http.Server
	var served sync.WaitGroup
	var instances []string
	defer func() {
		for _, s := range servers {
			_ = s.Close()
		}
		served.Wait()
	}()
	for range reqPathInstances {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: http.HandlerFunc(echoJSON), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		served.Go(func() { _ = srv.Serve(ln) })
		port := ln.Addr().(*net.TCPAddr).Port
		instances = append(instances, registry.Instance{
			ID: registry.DefaultID("bench", "127.0.0.1", port), Name: "bench", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)},
		}.String())
	}

	ours, err := client.NewFromInstancer(sd.FixedInstancer(instances), "bench")
	if err != nil {
		return err
	}
	defer ours.Close()
	// The path a generated client takes: its method's go-kit endpoint, made
	// by the HTTP transport's factory.
	oursEndpoint := client.NewEndpoint[benchReq, benchResp](ours, "POST", func(benchReq) string { return "/echo" })
	oursCall := func(ctx context.Context, req benchReq) (benchResp, error) {
		resp, err := oursEndpoint(ctx, req)
		if err != nil {
			return benchResp{}, err
		}
		return resp.(benchResp), nil
	}
	timed, err := client.NewFromInstancer(sd.FixedInstancer(instances), "bench", client.WithRetry(retry.WithPerAttemptTimeout(reqPathDeadline)))
	if err != nil {
		return err
	}
	defer timed.Close()
	timedCall := func(ctx context.Context, req benchReq) (benchResp, error) {
		return client.Call[benchReq, benchResp](ctx, timed, "POST", "/echo", req)
	}

	// The same POST marked idempotent, on a client of its own: what a GET
	// gets by default — the adaptive per-attempt deadline (a context and a
	// timer per attempt) and a hedge armed for every call (two cancellable
	// contexts and a timer), which the non-idempotent POST above has none of.
	idemPolicy, err := retry.New() // the defaults, held to count its hedges
	if err != nil {
		return err
	}
	idem, err := client.NewFromInstancer(sd.FixedInstancer(instances), "bench", client.WithRetryPolicy(idemPolicy))
	if err != nil {
		return err
	}
	defer idem.Close()
	idemEndpoint := client.NewEndpoint[benchReq, benchResp](idem, "POST", func(benchReq) string { return "/echo" }, client.Idempotent())
	idemCall := func(ctx context.Context, req benchReq) (benchResp, error) {
		resp, err := idemEndpoint(ctx, req)
		if err != nil {
			return benchResp{}, err
		}
		return resp.(benchResp), nil
	}

	raw := newRawRoundRobin(instances)
	defer raw.close()

	gokit, closeGokit := newGokitRoundRobin(instances)
	defer closeGokit()

	cs := []*contender{{name: "warren", call: oursCall}, {name: "raw", call: raw.call}, {name: "go-kit", call: gokit}, {name: "warren+attempt-timeout", call: timedCall}}
	if err := measureRounds(ctx, cs); err != nil {
		return err
	}

	const suite = "request-path"
	note := fmt.Sprintf("%d loopback instances, %d concurrent, %dB JSON, %d×%s", reqPathInstances, reqPathConcurrency, reqPathPayload, reqPathRounds, reqPathRound)
	addContenderRows(rep, suite, note, cs)
	// Other work on the 2 shared cores comes and goes within seconds, so
	// throughput compares each 100ms round with the raw round next to it
	// and takes the median ratio, rather than dividing totals that a burst
	// of outside load may have hit unevenly. A p99 needs many samples, so it
	// is taken over all rounds pooled; the interleaving spreads the noise.
	base := cs[1]
	for _, c := range []*contender{cs[0], cs[3], cs[2]} {
		rate := medianRatio(c.rounds, base.rounds, func(l loadResult) float64 { return l.rate() })
		p99 := float64(percentile(c.res.lat, 99)) / float64(percentile(base.res.lat, 99))
		cpu := c.res.cpuPerCall() / base.res.cpuPerCall()
		if c == cs[0] {
			rep.judged(row{Suite: suite, Metric: c.name + "/raw throughput", Value: rate, Unit: "×", Goal: "≥ 0.95× raw", Note: "median of per-round ratios"}, rate >= 0.95)
			rep.judged(row{Suite: suite, Metric: c.name + "/raw p99", Value: p99, Unit: "×", Goal: "≤ 1.10× raw", Note: "all rounds pooled"}, p99 <= 1.10)
		} else {
			rep.add(row{Suite: suite, Metric: c.name + "/raw throughput", Value: rate, Unit: "×", Note: "for reference"})
			rep.add(row{Suite: suite, Metric: c.name + "/raw p99", Value: p99, Unit: "×", Note: "for reference"})
		}
		rep.add(row{Suite: suite, Metric: c.name + "/raw CPU per call", Value: cpu, Unit: "×", Note: "least noisy figure"})
	}
	if err := callErrors(cs); err != nil {
		return err
	}

	// Timed calls, in rounds of their own (the rows above keep their
	// contenders): Warren's with a fixed attempt timeout and its idempotent
	// call, beside raw calls that are timed too — a context with a deadline
	// per call, as a careful hand-written client sets one. What a deadline
	// costs (a context, a timer, net/http's context per request hung off
	// it) is then on both sides, and what is left is Warren's.
	ts := []*contender{{name: "raw", call: raw.call}, {name: "raw+deadline", call: raw.callWithin(reqPathDeadline)},
		{name: "warren+attempt-timeout", call: timedCall}, {name: "warren-idempotent", call: idemCall}}
	if err := measureRounds(ctx, ts); err != nil {
		return err
	}
	addContenderRows(rep, suite+" timed", "second set of rounds: "+note, []*contender{ts[1], ts[3]})
	cpu := func(a, b *contender) float64 { return a.res.cpuPerCall() / b.res.cpuPerCall() }
	rep.add(row{Suite: suite, Metric: "raw+deadline/raw CPU per call", Value: cpu(ts[1], ts[0]), Unit: "×",
		Note: fmt.Sprintf("raw, each call under context.WithTimeout(%s); second set of rounds", reqPathDeadline)})
	rep.add(row{Suite: suite, Metric: "warren-idempotent/raw CPU per call", Value: cpu(ts[3], ts[0]), Unit: "×",
		Note: fmt.Sprintf("the defaults of an idempotent call: adaptive deadline + hedging; %d hedges sent in %d calls", idemPolicy.Hedges(), ts[3].res.n)})
	for _, c := range ts[2:] {
		rep.add(row{Suite: suite, Metric: c.name + "/raw+deadline CPU per call", Value: cpu(c, ts[1]), Unit: "×", Note: "both sides pay a deadline per call"})
	}
	return callErrors(ts)
}

// medianRatio is the median over rounds of f(a[i]) / f(b[i]).
func medianRatio(a, b []loadResult, f func(loadResult) float64) float64 {
	rs := make([]float64, len(a))
	for i := range a {
		rs[i] = f(a[i]) / f(b[i])
	}
	slices.Sort(rs)
	if n := len(rs); n%2 == 0 {
		return (rs[n/2-1] + rs[n/2]) / 2
	}
	return rs[len(rs)/2]
}

func echoJSON(w http.ResponseWriter, r *http.Request) {
	var in benchReq
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(benchResp(in))
}

// loadResult sums one contender's rounds.
type loadResult struct {
	n, errs int
	elapsed time.Duration
	cpu     time.Duration // process CPU (user+system), servers included
	lat     []time.Duration
}

func (l *loadResult) add(o loadResult) {
	l.n += o.n
	l.errs += o.errs
	l.elapsed += o.elapsed
	l.cpu += o.cpu
	l.lat = append(l.lat, o.lat...)
}

// cpuPerCall is the process CPU per call in microseconds. The servers run
// in this process and do the same work for every contender, so differences
// are the clients'; unlike req/s it barely moves with other load on the
// machine.
func (l loadResult) cpuPerCall() float64 {
	return float64(l.cpu) / float64(time.Microsecond) / float64(l.n)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (l loadResult) rate() float64 { return float64(l.n) / l.elapsed.Seconds() }

// runLoad calls from reqPathConcurrency goroutines for d. Each goroutine
// keeps its own latencies, so the measurement adds no shared lock.
func runLoad(ctx context.Context, call func(context.Context, benchReq) (benchResp, error), text string, d time.Duration) (loadResult, error) {
	var stop atomic.Bool
	lats := make([][]time.Duration, reqPathConcurrency)
	errs := make([]int, reqPathConcurrency)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), processCPU()
	for w := range reqPathConcurrency {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			for i := 0; !stop.Load() && ctx.Err() == nil; i++ {
				t0 := time.Now()
				resp, err := call(ctx, benchReq{ID: i, Text: text})
				lat = append(lat, time.Since(t0))
				if err == nil && resp.ID != i {
					err = fmt.Errorf("response for %d answers %d", i, resp.ID)
				}
				if err != nil {
					errs[w]++
					once.Do(func() { firstErr = err })
				}
			}
			lats[w] = lat
		})
	}
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
	}
	stop.Store(true)
	wg.Wait()
	res := loadResult{elapsed: time.Since(start), cpu: processCPU() - cpu0}
	for w := range lats {
		res.n += len(lats[w])
		res.errs += errs[w]
		res.lat = append(res.lat, lats[w]...)
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if firstErr != nil {
		return res, firstErr
	}
	return res, nil
}

// benchTransport is the tuned transport every contender gets: enough idle
// connections per host for 32 concurrent calls, no proxy.
func benchTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
}

// rawRoundRobin is what a careful hand-written client does: one transport,
// an atomic counter over the base URLs, JSON in and out, status checked.
type rawRoundRobin struct {
	tr    *http.Transport
	hc    *http.Client
	bases []string
	next  atomic.Uint64
}

func newRawRoundRobin(instances []string) *rawRoundRobin {
	r := &rawRoundRobin{tr: benchTransport()}
	r.hc = &http.Client{Transport: r.tr}
	for _, s := range instances {
		u, _ := url.Parse(s)
		r.bases = append(r.bases, "http://"+u.Host)
	}
	return r
}

func (r *rawRoundRobin) call(ctx context.Context, in benchReq) (benchResp, error) {
	var out benchResp
	body, err := json.Marshal(in)
	if err != nil {
		return out, err
	}
	base := r.bases[(r.next.Add(1)-1)%uint64(len(r.bases))]
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/echo", bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("status %d", resp.StatusCode)
	}
	return out, json.Unmarshal(b, &out)
}

// callWithin is call with each call under its own deadline d.
func (r *rawRoundRobin) callWithin(d time.Duration) func(context.Context, benchReq) (benchResp, error) {
	return func(ctx context.Context, in benchReq) (benchResp, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return r.call(ctx, in)
	}
}

func (r *rawRoundRobin) close() { r.tr.CloseIdleConnections() }

// newGokitRoundRobin is the plain go-kit stack, as its docs assemble it.
func newGokitRoundRobin(instances []string) (func(context.Context, benchReq) (benchResp, error), func()) {
	var mu sync.Mutex
	var transports []*http.Transport
	factory := func(instance string) (endpoint.Endpoint, io.Closer, error) {
		u, err := url.Parse(instance)
		if err != nil {
			return nil, nil, err
		}
		tr := benchTransport()
		mu.Lock()
		transports = append(transports, tr)
		mu.Unlock()
		target := &url.URL{Scheme: "http", Host: u.Host, Path: "/echo"}
		ep := kithttp.NewClient("POST", target, kithttp.EncodeJSONRequest, decodeBenchResp,
			kithttp.SetClient(&http.Client{Transport: tr})).Endpoint()
		return ep, nil, nil
	}
	endpointer := sd.NewEndpointer(sd.FixedInstancer(instances), factory, log.NewNopLogger())
	retried := lb.Retry(3, time.Second, lb.NewRoundRobin(endpointer))
	call := func(ctx context.Context, in benchReq) (benchResp, error) {
		resp, err := retried(ctx, in)
		if err != nil {
			return benchResp{}, err
		}
		return resp.(benchResp), nil
	}
	return call, func() {
		endpointer.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, tr := range transports {
			tr.CloseIdleConnections()
		}
	}
}

func decodeBenchResp(_ context.Context, resp *http.Response) (any, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	var out benchResp
	err := json.NewDecoder(resp.Body).Decode(&out)
	return out, err
}
