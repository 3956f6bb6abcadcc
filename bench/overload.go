package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
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
// protection ("off"), the server's load shedder with the waiting signal
// on ("server": overloadShed, the configuration docs/overload.md
// recommends for a CPU-bound service; the defaults alone do not bind
// here), and the shedder plus the callers' client-side limit
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
//
// The suite runs every configuration -overload-rounds times (default 3)
// and shows each figure's median over the rounds, with the machine's load
// average before and after each round. The goals are judged for the
// server shedding and for server+client; the server also times
// its own overload answers, from the shedder to the answer written.
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

// overloadShed is the server's shedder in modes "server" and "on": the
// defaults plus the waiting signal (off by default), as measured in
// docs/overload.md.
var overloadShed = []shed.Option{shed.WithWaitingTarget(16, 100*time.Millisecond)}

var overloadLevels = []int{8, 64, 512, 2048}

// overloadModes are the suite's three configurations, in the order run.
var overloadModes = []string{"off", "server", "on"}

var overloadModeName = map[string]string{
	"off":    "no protection",
	"server": "server shedding (waiting on)",
	"on":     "server+client",
}

// serveOverload is the server process: the demo user service behind
// Warren's server middleware and, when on, the load shedder with its
// overloadShed options. It prints its URL, serves until stdin closes, then prints the
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
	var refusals refusalTimes
	if mode != "off" {
		var err error
		if lim, err = shed.New(overloadShed...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		mw, err := shed.Middleware(lim)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		h = refusals.wrap(mw(h))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if lim != nil {
		srv.ConnState = lim.ConnState // as transport/httpserver wires it
	}
	go srv.Serve(ln)
	fmt.Printf("http://%s/users/%s\n", ln.Addr(), u.ID)
	_, _ = io.Copy(io.Discard, os.Stdin)
	var st overloadServerStats
	if lim != nil {
		st.Shed = lim.Stats()
	}
	st.Refusals, st.RefuseP99 = refusals.p99()
	_ = json.NewEncoder(os.Stdout).Encode(st)
	_ = srv.Close()
}

// refusalTimes records, in the server, how long its overload answers
// took: from the request reaching the shedder to the answer written, in
// 10 µs buckets up to 10 ms.
type refusalTimes struct {
	buckets [1001]atomic.Int64
}

func (t *refusalTimes) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		// Only the shedder's answers carry Retry-After here (the user
		// service's GET never does).
		if w.Header().Get("Retry-After") != "" {
			t.buckets[min(int(time.Since(start)/(10*time.Microsecond)), len(t.buckets)-1)].Add(1)
		}
	})
}

// p99 returns the number of refusals and their 99th percentile in ms.
func (t *refusalTimes) p99() (int, float64) {
	total := int64(0)
	for i := range t.buckets {
		total += t.buckets[i].Load()
	}
	acc := int64(0)
	for i := range t.buckets {
		acc += t.buckets[i].Load()
		if total > 0 && acc*100 >= total*99 {
			return int(total), float64(i+1) * 0.01
		}
	}
	return int(total), 0
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

// overloadRounds is how many times the suite runs every configuration;
// the table shows the median round's figures (the machine's load moves
// single rounds by 2×).
var overloadRounds = flag.Int("overload-rounds", 3, "rounds of the overload suite (its figures are the median)")

// overloadServerStats is what the server process reports when it ends:
// the shedder's stats and the server-side time of its overload answers.
type overloadServerStats struct {
	Shed      shed.Stats `json:"shed"`
	Refusals  int        `json:"refusals"`
	RefuseP99 float64    `json:"refuse_p99_ms"` // from the request reaching the middleware to the answer written
}

// overloadRound is one round: every configuration's levels, in order.
type overloadRound struct {
	load  string // load average before and after
	res   map[string][]overloadResult
	stats map[string]overloadServerStats
	peak  float64
}

func benchOverload(ctx context.Context, rep *report) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var rounds []overloadRound
	for i := range max(1, *overloadRounds) {
		rd := overloadRound{res: map[string][]overloadResult{}, stats: map[string]overloadServerStats{}}
		before := loadAvg()
		for _, mode := range overloadModes {
			rs, st, err := overloadMode(ctx, exe, mode)
			if err != nil {
				return fmt.Errorf("round %d, mode %s: %w", i+1, mode, err)
			}
			rd.res[mode], rd.stats[mode] = rs, st
			for _, r := range rs {
				rd.peak = max(rd.peak, r.goodput())
			}
		}
		rd.load = before + " → " + loadAvg()
		fmt.Fprintf(os.Stderr, "bench: overload round %d of %d done, load %s\n", i+1, *overloadRounds, rd.load)
		rounds = append(rounds, rd)
	}

	const suite = "overload"
	var loads []string
	for _, rd := range rounds {
		loads = append(loads, rd.load)
	}
	for _, mode := range overloadModes {
		for i, lvl := range overloadLevels {
			var good, p50, p99, refused, limited, refP99 []float64
			errs, past, lim := 0, 0, int64(0)
			for _, rd := range rounds {
				r := rd.res[mode][i]
				good = append(good, r.goodput())
				p50 = append(p50, ms(percentile(r.ok, 50)))
				p99 = append(p99, ms(percentile(r.ok, 99)))
				refused = append(refused, float64(len(r.shed))/r.elapsed.Seconds())
				limited = append(limited, float64(r.limited)/r.elapsed.Seconds())
				refP99 = append(refP99, ms(percentile(r.shed, 99)))
				errs, past, lim = errs+r.errs, past+r.deadline, r.limit
			}
			note := fmt.Sprintf("median of %d: p50 %.2f ms, p99 %.2f ms; refused %.0f/s (%.0f/s by the client limit; caller-observed p99 %.3f ms); errors %d in all rounds",
				len(rounds), median(p50), median(p99), median(refused), median(limited), median(refP99), errs)
			if past > 0 {
				note += fmt.Sprintf(" (%d past deadline)", past)
			}
			if mode == "on" {
				note += fmt.Sprintf("; client limit %d", lim)
			}
			note += fmt.Sprintf("; goodput by round %s", joinFloats(good, "%.0f"))
			if i == len(overloadLevels)-1 && mode != "off" {
				st := rounds[len(rounds)-1].stats[mode]
				note += fmt.Sprintf("; server totals (last round): %d admitted, %d shed for waiting, %d by limit, %d by run queue; server-side refusal p99 %.3f ms",
					st.Shed.Admitted, st.Shed.ShedWaiting, st.Shed.ShedLimit, st.Shed.ShedQueue, st.RefuseP99)
			}
			if i == 0 && mode == "off" {
				note += "; load average (1 min) before → after each round: " + strings.Join(loads, ", ")
			}
			rep.add(row{Suite: suite, Metric: fmt.Sprintf("%s, %d callers: goodput", overloadModeName[mode], lvl), Value: median(good), Unit: "req/s", Note: note})
		}
	}
	// The goals, for server shedding and with the client's
	// latency limit: each round's figure, then their median.
	for _, mode := range []string{"server", "on"} {
		if _, ok := rounds[0].res[mode]; !ok {
			continue
		}
		name := overloadModeName[mode]
		var ratio, share, shedP99, srvP99 []float64
		past, answers := 0, 0
		for _, rd := range rounds {
			rs := rd.res[mode]
			low, high := rs[0], rs[len(rs)-1]
			ratio = append(ratio, float64(percentile(high.ok, 99))/float64(max(percentile(low.ok, 99), 1)))
			share = append(share, high.goodput()/rd.peak)
			shedP99 = append(shedP99, ms(percentile(high.shed, 99)))
			srvP99 = append(srvP99, rd.stats[mode].RefuseP99)
			past += high.deadline
			answers += len(high.shed)
		}
		hi := overloadLevels[len(overloadLevels)-1]
		rep.judged(row{Suite: suite, Metric: fmt.Sprintf("%s: admitted p99 at %d / at %d callers", name, hi, overloadLevels[0]),
			Value: median(ratio), Unit: "×", Goal: "≤ 3×", Note: "median of rounds " + joinFloats(ratio, "%.2f")}, median(ratio) <= 3)
		rep.judged(row{Suite: suite, Metric: fmt.Sprintf("%s: goodput at %d callers / peak", name, hi),
			Value: median(share), Unit: "×", Goal: "≥ 0.90", Note: "peak over every row of the round; median of rounds " + joinFloats(share, "%.2f")}, median(share) >= 0.9)
		srv := median(srvP99)
		rep.judged(row{Suite: suite, Metric: fmt.Sprintf("%s: overload answer p99 at %d callers, server-side", name, hi),
			Value: srv, Unit: "ms", Goal: "< 1 ms", Note: fmt.Sprintf("from the middleware to the answer written; caller-observed (incl. the wait before the request is read, or the client limit's) by round %s ms", joinFloats(shedP99, "%.3f"))},
			answers > 0 && srv < 1)
		rep.judged(row{Suite: suite, Metric: fmt.Sprintf("%s: requests past their deadline at %d callers", name, hi),
			Value: float64(past), Unit: "calls", Goal: "0", Note: fmt.Sprintf("%ds deadline, all rounds", int(overloadDeadline/time.Second))}, past == 0)
	}
	return nil
}

func joinFloats(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

// loadAvg is the machine's 1-minute load average, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// overloadMode starts a server process and measures every level against it.
func overloadMode(ctx context.Context, exe, mode string) ([]overloadResult, overloadServerStats, error) {
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), overloadServerEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, overloadServerStats{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, overloadServerStats{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, overloadServerStats{}, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	url, err := out.ReadString('\n')
	if err != nil {
		return nil, overloadServerStats{}, fmt.Errorf("server did not start: %w", err)
	}
	url = strings.TrimSpace(url)
	// In mode "on" the callers share one client-side limit, as the
	// calls of one client service (order calling user) do.
	var lim *climit.Limiter
	if mode == "on" {
		if lim, err = climit.New(overloadClientLimit...); err != nil {
			return nil, overloadServerStats{}, err
		}
	}
	var rs []overloadResult
	for _, n := range overloadLevels {
		r, err := driveOverload(ctx, url, n, lim)
		if err != nil {
			return nil, overloadServerStats{}, err
		}
		rs = append(rs, r)
	}
	_ = stdin.Close()
	var st overloadServerStats
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
