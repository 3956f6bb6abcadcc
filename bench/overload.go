package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/climit"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/services/user"
)

// The overload suite measures issue 23's table: the demo user service (one
// instance, its own process, GET /users/{id}) under 8, 64, 512 and 2048
// concurrent callers on the same 2 cores, three ways: no overload
// protection ("off"), the server's load shedder with its defaults
// ("server"), and the shedder plus the callers' client-side limit
// following the round trip ("on": climit.WithLatency, one limit shared by
// all callers, as the calls of one client service share it).
//
// Each caller loops: one request with a 2s deadline; on an overload answer
// it leaves the instance alone for half to all of Retry-After (as Warren's
// client does, balancer.Overloaded; the shedder sends 1s to 5s, longer as
// more is shed) before its next request; refused by its own client's
// limit, it answers without the service (a fallback) and makes its next
// call half to all of a second later. Goodput counts 200s; latency
// percentiles are of admitted (200) requests, timed by the caller from
// before the client's limit; "refused" is the caller-observed time of
// overload answers and of the client limit's refusals. Callers arrive
// over the first half second and the first 2s are not measured, so the
// rows are steady state.
const (
	overloadServerEnv = "WARREN_BENCH_OVERLOAD_SERVER" // a mode: run as the server
	overloadWarmup    = 2 * time.Second
	overloadMeasure   = 3 * time.Second
	overloadDeadline  = 2 * time.Second
	// overloadLimitedPause is how long a caller the client's limit refused
	// waits before its next call: half to all of it, as for an overload
	// answer with the least Retry-After.
	overloadLimitedPause = time.Second
)

// overloadClientLimit is the callers' client-side limit in mode "on":
// it follows the round trip, from a low start so that the lowest round
// trip is learnt before the service queues.
var overloadClientLimit = []climit.Option{climit.WithLimits(8, 2, 1000), climit.WithLatency(2)}

var overloadLevels = []int{8, 64, 512, 2048}

// overloadModes are the suite's three configurations, in the order run.
var overloadModes = []string{"off", "server", "on"}

var overloadModeName = map[string]string{
	"off":    "no protection",
	"server": "server shedding",
	"on":     "server+client",
}

// serveOverload is the server process: the demo user service behind
// Warren's server middleware and, when on, the load shedder with its
// defaults. It prints its URL, serves until stdin closes, then prints the
// shedder's final stats as JSON.
func serveOverload(mode string) {
	svc := user.New(user.NewMemoryStore())
	u, err := svc.Create(context.Background(), user.CreateRequest{Name: "Ann", Email: "ann@example.com"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nop := log.NewNopLogger()
	h := httptransport.Handler(user.NewHTTPHandler(user.MakeEndpoints(svc), nop), nop, 0)
	var lim *shed.Limiter
	if mode != "off" {
		var err error
		if lim, err = shed.New(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		mw, err := shed.Middleware(lim)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		h = mw(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("http://%s/users/%s\n", ln.Addr(), u.ID)
	_, _ = io.Copy(io.Discard, os.Stdin)
	var st shed.Stats
	if lim != nil {
		st = lim.Stats()
	}
	_ = json.NewEncoder(os.Stdout).Encode(st)
	_ = srv.Close()
}

// overloadResult is one load level's figures.
type overloadResult struct {
	callers  int
	elapsed  time.Duration
	ok       []time.Duration // admitted requests
	shed     []time.Duration // overload answers and local refusals
	limited  int             // of shed, refused by the client's own limit
	limit    int64           // the client's limit at the end
	errs     int
	deadline int // of errs, requests that ran past their deadline
	firstErr string
}

func (r overloadResult) goodput() float64 { return float64(len(r.ok)) / r.elapsed.Seconds() }

func benchOverload(ctx context.Context, rep *report) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	res := map[string][]overloadResult{}
	stats := map[string]shed.Stats{}
	for _, mode := range overloadModes {
		rs, st, err := overloadMode(ctx, exe, mode)
		if err != nil {
			return fmt.Errorf("mode %s: %w", mode, err)
		}
		res[mode], stats[mode] = rs, st
	}

	const suite = "overload"
	peak := 0.0
	for _, rs := range res {
		for _, r := range rs {
			peak = max(peak, r.goodput())
		}
	}
	for _, mode := range overloadModes {
		for i, r := range res[mode] {
			note := fmt.Sprintf("p50 %.2f ms, p99 %.2f ms; refused %.0f/s (%.0f/s by the client limit; p99 %.3f ms); errors %d", ms(percentile(r.ok, 50)), ms(percentile(r.ok, 99)),
				float64(len(r.shed))/r.elapsed.Seconds(), float64(r.limited)/r.elapsed.Seconds(), ms(percentile(r.shed, 99)), r.errs)
			if mode == "on" {
				note += fmt.Sprintf("; client limit %d", r.limit)
			}
			if r.deadline > 0 {
				note += fmt.Sprintf(" (%d past deadline)", r.deadline)
			}
			if i == 0 && mode != "off" {
				note += fmt.Sprintf("; server totals: %d admitted, %d shed by queue, %d by limit", stats[mode].Admitted, stats[mode].ShedQueue, stats[mode].ShedLimit)
			}
			rep.add(row{Suite: suite, Metric: fmt.Sprintf("%s, %d callers: goodput", overloadModeName[mode], r.callers), Value: r.goodput(), Unit: "req/s", Note: note})
		}
	}
	on := res["on"]
	low, high := on[0], on[len(on)-1]
	p99Low, p99High := percentile(low.ok, 99), percentile(high.ok, 99)
	rep.judged(row{Suite: suite, Metric: fmt.Sprintf("server+client: admitted p99 at %d / at %d callers", high.callers, low.callers),
		Value: float64(p99High) / float64(max(p99Low, 1)), Unit: "×", Goal: "≤ 3×",
		Note: fmt.Sprintf("%.2f / %.2f ms", ms(p99High), ms(p99Low))}, p99High <= 3*p99Low)
	rep.judged(row{Suite: suite, Metric: fmt.Sprintf("server+client: goodput at %d callers / peak", high.callers),
		Value: high.goodput() / peak, Unit: "×", Goal: "≥ 0.90", Note: fmt.Sprintf("peak %.0f req/s over every row", peak)}, high.goodput() >= 0.9*peak)
	shedP99 := percentile(high.shed, 99)
	rep.judged(row{Suite: suite, Metric: fmt.Sprintf("server+client: overload answer p99 at %d callers", high.callers),
		Value: ms(shedP99), Unit: "ms", Goal: "< 1 ms", Note: fmt.Sprintf("%d answers, caller-observed", len(high.shed))}, len(high.shed) > 0 && shedP99 < time.Millisecond)
	rep.judged(row{Suite: suite, Metric: fmt.Sprintf("server+client: requests past their deadline at %d callers", high.callers),
		Value: float64(high.deadline), Unit: "calls", Goal: "0", Note: fmt.Sprintf("%ds deadline", int(overloadDeadline/time.Second))}, high.deadline == 0)
	return nil
}

// overloadMode starts a server process and measures every level against it.
func overloadMode(ctx context.Context, exe, mode string) ([]overloadResult, shed.Stats, error) {
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), overloadServerEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, shed.Stats{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, shed.Stats{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, shed.Stats{}, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	url, err := out.ReadString('\n')
	if err != nil {
		return nil, shed.Stats{}, fmt.Errorf("server did not start: %w", err)
	}
	url = strings.TrimSpace(url)
	// In mode "on" the callers share one client-side limit, as the
	// calls of one client service (order calling user) do.
	var lim *climit.Limiter
	if mode == "on" {
		if lim, err = climit.New(overloadClientLimit...); err != nil {
			return nil, shed.Stats{}, err
		}
	}
	var rs []overloadResult
	for _, n := range overloadLevels {
		r, err := driveOverload(ctx, url, n, lim)
		if err != nil {
			return nil, shed.Stats{}, err
		}
		rs = append(rs, r)
	}
	_ = stdin.Close()
	var st shed.Stats
	line, err := out.ReadString('\n')
	if err == nil {
		_ = json.Unmarshal([]byte(line), &st)
	}
	return rs, st, nil
}

// driveOverload runs n callers for warm-up plus measurement and returns
// what was measured.
func driveOverload(ctx context.Context, url string, n int, lim *climit.Limiter) (overloadResult, error) {
	// One transport per 16 callers, as if they were separate client
	// processes: a single http.Transport's idle-connection pool is one
	// mutex, and 2048 goroutines contending on it measure the load
	// generator, not the server.
	var hcs []*http.Client
	for range (n + 15) / 16 {
		tr := &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second}
		defer tr.CloseIdleConnections()
		hcs = append(hcs, &http.Client{Transport: tr})
	}
	start := time.Now()
	from, until := start.Add(overloadWarmup), start.Add(overloadWarmup+overloadMeasure)
	var mu sync.Mutex
	res := overloadResult{callers: n, elapsed: overloadMeasure}
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for i := range n {
		hc := hcs[i/16]
		wg.Go(func() {
			// Callers arrive over the first half second, as load ramps in
			// practice, rather than as one dial storm.
			time.Sleep(rand.N(500 * time.Millisecond))
			var ok, shedLat []time.Duration
			errs, past, limited := 0, 0, 0
			first := ""
			for !stopped.Load() && ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(until) {
					break
				}
				in := !t0.Before(from)
				var tok climit.Token
				if lim != nil {
					var ok bool
					if tok, ok = lim.Acquire(); !ok {
						if in {
							shedLat = append(shedLat, time.Since(t0))
							limited++
						}
						// The caller answers without the service (its
						// fallback); its next call comes a while later.
						time.Sleep(overloadLimitedPause/2 + rand.N(overloadLimitedPause/2))
						continue
					}
				}
				status, ra, err := overloadCall(ctx, hc, url)
				el := time.Since(t0)
				if lim != nil {
					tok.Release(overloadOutcome(status, err))
				}
				switch {
				case err != nil || (status != http.StatusOK && status != http.StatusServiceUnavailable):
					if in {
						errs++
						if errors.Is(err, context.DeadlineExceeded) {
							past++
						}
						if first == "" {
							first = fmt.Sprintf("status %d, %v", status, err)
						}
					}
				case status == http.StatusOK:
					if in {
						ok = append(ok, el)
					}
				default:
					if in {
						shedLat = append(shedLat, el)
					}
					// Leave the instance alone as Warren's client does:
					// half to all of Retry-After.
					d := time.Duration(max(ra, 1)) * time.Second
					time.Sleep(d/2 + rand.N(d/2))
				}
			}
			mu.Lock()
			res.ok = append(res.ok, ok...)
			res.shed = append(res.shed, shedLat...)
			res.errs += errs
			res.limited += limited
			res.deadline += past
			if res.firstErr == "" {
				res.firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if lim != nil {
		res.limit = lim.Stats().Limit
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// overloadOutcome is what a call tells the client-side limit.
func overloadOutcome(status int, err error) climit.Outcome {
	switch {
	case err == nil && status == http.StatusOK:
		return climit.Success
	case status == http.StatusServiceUnavailable:
		return climit.Classify(svcerr.ErrOverloaded)
	}
	return climit.Classify(err)
}

// overloadCall makes one request and returns its status and Retry-After
// (in seconds).
func overloadCall(ctx context.Context, hc *http.Client, url string) (int, int, error) {
	ctx, cancel := context.WithTimeout(ctx, overloadDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, min(ra, 5), err
}
