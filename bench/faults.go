package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul/consuldev"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/services/user"
	"github.com/warren-mesh/warren/test/faults"
)

// Settings of the faults suite, the same as the fault tests' (test/faults).
const (
	faultTTL     = 3 * time.Second
	faultGrace   = time.Second
	faultRate    = 200 // calls per second
	startSamples = 5
)

// benchFaults measures, on a real mesh of demo service processes (user,
// two instances) for etcd and then Consul: the idle memory of a service
// process, the time from exec to registered, the errors a client sees
// during a rolling restart and during a SIGKILL under load, and how long a
// killed instance stays in discovery.
func benchFaults(ctx context.Context, rep *report) error {
	bin, err := os.MkdirTemp("", "bench-faults-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := devmesh.Build(ctx, root, bin); err != nil {
		return err
	}
	for _, reg := range []string{"etcd", "consul"} {
		if err := faultsOn(ctx, rep, root, bin, reg); err != nil {
			return fmt.Errorf("%s: %w", reg, err)
		}
	}
	return nil
}

func faultsOn(ctx context.Context, rep *report, root, bin, reg string) error {
	suite := "faults-" + reg
	state, err := os.MkdirTemp("", "bench-faults-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	m, err := devmesh.Start(ctx, devmesh.Config{
		Root: root, Registry: reg, StateDir: state, BinDir: bin, Out: io.Discard,
		Backends: []devmesh.Backend{etcddev.Backend(), consuldev.Backend()},
		TTL:      faultTTL, Grace: faultGrace, Services: []string{"user"},
	})
	if err != nil {
		return err
	}
	defer m.Stop()

	// Idle memory: a second after start, no traffic.
	time.Sleep(time.Second)
	rss, err := vmRSS(m.Instance("user", 1).Pid())
	if err != nil {
		return err
	}
	rep.add(row{Suite: suite, Metric: "idle RSS of a service process", Value: float64(rss) / 1024, Unit: "MiB",
		Note: "demo user service, VmRSS after start, no traffic"})

	// Start → registered: exec to the instance in a watcher's set.
	ins, err := m.Discovery().Instancer(ctx, "user")
	if err != nil {
		return err
	}
	defer ins.Stop()
	sub := subscribe(ins)
	defer sub.close()
	var starts []time.Duration
	for range startSamples {
		began := time.Now()
		in, err := m.StartInstance("user", devmesh.InstanceOptions{})
		if err != nil {
			return err
		}
		if err := sub.await(ctx, func(ev sd.Event) bool { return listed(ev, in.ID()) }); err != nil {
			return fmt.Errorf("%s not registered: %w", in.ID(), err)
		}
		starts = append(starts, time.Since(began))
		if err := m.Signal(in, syscall.SIGTERM); err != nil {
			return err
		}
		<-in.Exited()
		if err := sub.await(ctx, func(ev sd.Event) bool { return !listed(ev, in.ID()) }); err != nil {
			return err
		}
	}
	slices.Sort(starts)
	rep.add(row{Suite: suite, Metric: "start → registered (median)", Value: ms(starts[len(starts)/2]), Unit: "ms",
		Note: fmt.Sprintf("exec → listen, self-check, register → in a watcher's set; %d starts, max %s", len(starts), starts[len(starts)-1].Round(time.Millisecond))})

	// The load client: typed user client with default settings, GETs.
	uc, err := user.NewClient(ctx, m.Discovery())
	if err != nil {
		return err
	}
	defer uc.Close()
	u, err := uc.Create(ctx, user.CreateRequest{Name: "Bench", Email: fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())})
	if err != nil {
		return err
	}
	get := func(ctx context.Context) error {
		_, err := uc.Get(ctx, user.GetRequest{ID: u.ID})
		return err
	}

	// Rolling restart of both instances under load.
	run := faults.Load{Rate: faultRate, Duration: time.Minute}.Start(ctx, get)
	time.Sleep(time.Second)
	for _, i := range []int{1, 2} {
		if _, err := m.Restart(ctx, m.Instance("user", i)); err != nil {
			run.Stop()
			run.Wait()
			return err
		}
	}
	time.Sleep(time.Second)
	run.Stop()
	res := run.Wait()
	rep.judged(row{Suite: suite, Metric: "errors during a rolling restart", Value: float64(res.Errors()), Unit: "calls",
		Goal: "0", Note: fmt.Sprintf("%d/%d GETs at %d/s, 2 instances SIGTERM + new; p99 %s", res.Errors(), res.Total(), faultRate, res.Percentile(99).Round(10*time.Microsecond))},
		res.Errors() == 0)

	// SIGKILL under load: errors, and how long the dead instance stays
	// listed. A fresh subscription starts from the current set.
	victim := m.Instance("user", 1)
	kill := subscribe(ins)
	defer kill.close()
	if err := kill.await(ctx, func(ev sd.Event) bool { return listed(ev, victim.ID()) }); err != nil {
		return err
	}
	run = faults.Load{Rate: faultRate, Duration: time.Minute}.Start(ctx, get)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	if err := m.Kill(victim); err != nil {
		run.Stop()
		run.Wait()
		return err
	}
	err = kill.await(ctx, func(ev sd.Event) bool { return !listed(ev, victim.ID()) })
	removal := time.Since(killed)
	time.Sleep(time.Second)
	run.Stop()
	res = run.Wait()
	if err != nil {
		return fmt.Errorf("killed instance never left discovery: %w", err)
	}
	rep.judged(row{Suite: suite, Metric: "crash → removed from discovery", Value: removal.Seconds(), Unit: "s",
		Goal: "≤ TTL + 1 s", Note: fmt.Sprintf("SIGKILL, TTL %s", faultTTL)}, removal <= faultTTL+time.Second)
	rep.judged(row{Suite: suite, Metric: "errors during a crash", Value: float64(res.Errors()), Unit: "calls",
		Goal: "0", Note: fmt.Sprintf("%d/%d GETs at %d/s around a SIGKILL; p99 %s", res.Errors(), res.Total(), faultRate, res.Percentile(99).Round(10*time.Microsecond))},
		res.Errors() == 0)
	// A fresh second instance beside user-2 for the hang scenario.
	fresh, err := m.StartInstance("user", devmesh.InstanceOptions{})
	if err != nil {
		return err
	}
	if err := kill.await(ctx, func(ev sd.Event) bool { return listed(ev, fresh.ID()) }); err != nil {
		return fmt.Errorf("%s not registered: %w", fresh.ID(), err)
	}
	return hangWithDefaults(ctx, rep, suite, m, fresh, m.Instance("user", 2))
}

// ejections records when the client ejected each instance, and counts
// its attempts after the first (retries and hedges). From watch on, it
// also counts the attempts sent to each instance and notes when one left
// the client's set: if a breaker never opens, they say whether the hung
// instance was still tried at all (P2C and hedges may keep calls off it
// before it fails often enough) or had left discovery.
type ejections struct {
	client.NopObserver
	mu       sync.Mutex
	at       map[string][]time.Time
	watch    time.Time
	picked   map[string]int
	released map[string]time.Time
	retried  atomic.Int64
	hedged   atomic.Int64
}

func (e *ejections) Retried(string) { e.retried.Add(1) }
func (e *ejections) Hedged(string)  { e.hedged.Add(1) }

// from starts counting attempts and departures at t.
func (e *ejections) from(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.watch, e.picked, e.released = t, map[string]int{}, map[string]time.Time{}
}

func (e *ejections) Picked(_, instance string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.picked != nil {
		e.picked[instance]++
	}
}

func (e *ejections) InstanceReleased(_, instance string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.released[instance]; !ok && e.released != nil {
		e.released[instance] = time.Now()
	}
}

// since says how many attempts went to instance since from, and when it
// left the client's set after from (zero: it did not).
func (e *ejections) since(instance string) (attempts int, left time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.released[instance]; ok {
		left = t.Sub(e.watch)
	}
	return e.picked[instance], left
}

func (e *ejections) BreakerChanged(_, instance string, _, to outlier.State) {
	if to != outlier.Open {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.at[instance] = append(e.at[instance], time.Now())
}

// after returns the first ejection of instance at or after t, and how
// many came before t (a stall of the loaded machine can eject an instance
// before the fault; that is no ejection of the fault).
func (e *ejections) after(instance string, t time.Time) (at time.Time, ok bool, before int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.at[instance] {
		if x.Before(t) {
			before++
		} else if !ok {
			at, ok = x, true
		}
	}
	return at, ok, before
}

// hangWithDefaults hangs one of two instances (SIGSTOP: the kernel still
// accepts its connections) under GETs and keyed POSTs (1 in 20) from a
// client with default settings — no per-attempt timeout, only the adaptive
// deadline — and reports the errors, the p99 beside the steady p99 before
// the hang, and when the client ejected the hung instance. It hangs the
// one that took more of the client's attempts in the second before: at
// this rate P2C may send nearly every call to one instance, and hanging
// the other would test neither the errors nor the ejection.
func hangWithDefaults(ctx context.Context, rep *report, suite string, m *devmesh.Mesh, a, b *devmesh.Instance) error {
	obs := &ejections{at: map[string][]time.Time{}}
	uc, err := user.NewClient(ctx, m.Discovery(), client.WithObserver(obs))
	if err != nil {
		return err
	}
	defer uc.Close()
	u, err := uc.Create(ctx, user.CreateRequest{Name: "Bench", Email: fmt.Sprintf("hang-%d@example.com", time.Now().UnixNano())})
	if err != nil {
		return err
	}
	var n atomic.Int64
	call := func(ctx context.Context) error {
		i := n.Add(1)
		if i%20 != 0 {
			_, err := uc.Get(ctx, user.GetRequest{ID: u.ID})
			return err
		}
		_, err := uc.Create(ctx, user.CreateRequest{Name: "Load", Email: fmt.Sprintf("hang-%d-%d@example.com", time.Now().UnixNano(), i)})
		return err
	}
	steady := faults.Load{Rate: faultRate, Duration: 3 * time.Second}.Start(ctx, call).Wait()
	run := faults.Load{Rate: faultRate, Duration: 8 * time.Second}.Start(ctx, call)
	obs.from(time.Now())
	time.Sleep(time.Second)
	hung, other := busier(obs, a, b)
	stopped := time.Now()
	obs.from(stopped)
	if err := m.Signal(hung.Instance, syscall.SIGSTOP); err != nil {
		run.Stop()
		run.Wait()
		return err
	}
	res := run.Wait()
	if err := m.Signal(hung.Instance, syscall.SIGCONT); err != nil {
		return err
	}
	ejectedAt, ejected, before := obs.after(hung.ID(), stopped)
	note := fmt.Sprintf("%d/%d calls (19 GET : 1 keyed POST) at %d/s, 7 s of them with one of 2 instances SIGSTOPped (the busier: %d vs %d attempts in the second before); client defaults; %d retries and %d hedges in all",
		res.Errors(), res.Total(), faultRate, hung.picks, other.picks, obs.retried.Load(), obs.hedged.Load())
	rep.judged(row{Suite: suite, Metric: "hung instance, client defaults: errors", Value: float64(res.Errors()), Unit: "calls", Goal: "0", Note: note}, res.Errors() == 0)
	p99, sp99 := res.Percentile(99), steady.Percentile(99)
	rep.judged(row{Suite: suite, Metric: "hung instance, client defaults: p99 / steady p99", Value: float64(p99) / float64(sp99), Unit: "×",
		Goal: "≤ 10×", Note: fmt.Sprintf("p99 %s, steady p99 %s (3 s before the hang)", p99.Round(10*time.Microsecond), sp99.Round(10*time.Microsecond))}, p99 <= 10*sp99)
	eject := -1.0
	ejectNote := fmt.Sprintf("SIGSTOP → the client's breaker opens (-1: never); %d ejections of it before the hang", before)
	if ejected {
		eject = ejectedAt.Sub(stopped).Seconds()
	} else {
		attempts, left := obs.since(hung.ID())
		ejectNote += fmt.Sprintf("; %d attempts went to it during the hang", attempts)
		if left > 0 {
			ejectNote += fmt.Sprintf(", and it left the client's set after %.2f s", left.Seconds())
		} else {
			ejectNote += ", and it stayed in the client's set"
		}
	}
	rep.judged(row{Suite: suite, Metric: "hung instance, client defaults: ejected after", Value: eject, Unit: "s", Goal: "≤ 1 s",
		Note: ejectNote}, ejected && eject <= 1)
	return nil
}

// picked is an instance and the attempts it took in a window.
type picked struct {
	*devmesh.Instance
	picks int
}

// busier returns the instance of a and b that took more attempts since
// e.from, then the other (a on a tie).
func busier(e *ejections, a, b *devmesh.Instance) (busy, other picked) {
	na, _ := e.since(a.ID())
	nb, _ := e.since(b.ID())
	if nb > na {
		return picked{b, nb}, picked{a, na}
	}
	return picked{a, na}, picked{b, nb}
}

// listed reports whether the event's set holds the instance ID.
func listed(ev sd.Event, id string) bool {
	for _, s := range ev.Instances {
		if ri, err := registry.ParseInstance(s); err == nil && ri.ID == id {
			return true
		}
	}
	return false
}

// vmRSS reads a process's resident set size in KiB from /proc.
func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
