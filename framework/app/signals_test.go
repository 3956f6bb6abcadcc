package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// lines is a logger that keeps every line.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) Log(kv ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, fmt.Sprint(kv...))
	return nil
}

func (l *lines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.l {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// timeout(1) signals its child and then the child's process group: the
// second SIGTERM is the same request, logged and dropped (the rule itself
// is tested in internal/stopsig).
func TestSignals_RepeatWithinTheWindowIsLogged(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	log := &lines{}
	sw := watchSignals(sigs, log, time.Hour)
	defer sw.Close()
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGTERM
	waitFor(t, "the repeat logged", func() bool { return log.count("taken as the same request") == 1 })
	if !closed(sw.Stop()) || sw.First() != syscall.SIGTERM {
		t.Fatalf("first signal did not ask for a stop (first %v)", sw.First())
	}
	if closed(sw.Force()) {
		t.Fatal("a signal repeated at once forced exit")
	}
}

// stalling is a registry whose Register waits for its context, as one
// retrying against an unreachable server does.
type stalling struct {
	*memory.Registry
	entered chan struct{}
	once    sync.Once
}

func (s *stalling) Register(ctx context.Context, _ registry.Instance) error {
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	return ctx.Err()
}

// A SIGTERM while the registration is still being retried ends the
// start-up at once, not at the register timeout (here a minute).
func TestRun_SignalDuringRegistrationEndsTheStartUp(t *testing.T) {
	j := &journal{}
	reg := &stalling{Registry: memory.New(), entered: make(chan struct{})}
	a, err := New("svc", okHandler(), reg, testOptions(j, WithSignals(true), WithRegisterTimeout(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	select {
	case <-reg.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("Register not called within 20s")
	}
	sent := time.Now()
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	err = wait(t, done) // 20s, well under the register timeout
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want ErrInterrupted wrapping the cancelled registration", err)
	}
	if indexOf(j.list(), "phase:release") < 0 {
		t.Fatalf("the interrupted start-up did not release: %v", j.list())
	}
	t.Logf("Run returned %s after the signal", time.Since(sent).Round(time.Millisecond))
}

// An embedder turns signals off and cancels ctx instead (docs/lifecycle.md):
// a start-up it cuts short is ErrInterrupted too, not only a failed
// self-check that blames the advertised address or a failed registration.
func TestRun_CancelDuringStartUpIsInterrupted(t *testing.T) {
	t.Run("self-check", func(t *testing.T) {
		a, err := New("svc", okHandler(), memory.New(), testOptions(&journal{}, WithSignals(false))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // before the self-check can pass
		err = a.Run(ctx)
		if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want ErrInterrupted", err)
		}
	})
	// A self-check that keeps failing, cut short: the error said it "did
	// not reach this process … within 30s" of a check interrupted at once
	// (report j53d finding 10); it says it was interrupted, and when.
	t.Run("self-check failing", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String() // refuses connections once closed
		ln.Close()
		a, err := New("svc", okHandler(), memory.New(), testOptions(&journal{}, WithSignals(false),
			WithAdvertise(dead), WithSelfCheckTimeout(30*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		err = wait(t, done)
		switch {
		case !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled):
			t.Fatalf("Run = %v, want ErrInterrupted", err)
		case errors.Is(err, ErrSelfCheck) || strings.Contains(err.Error(), "within 30s"):
			t.Fatalf("Run = %v: an interrupted self-check told as one that ran out its time", err)
		case !strings.Contains(err.Error(), "self-check interrupted after") || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "connection refused"):
			t.Fatalf("Run = %v, want it to say the self-check of %s was interrupted, and its last answer", err, dead)
		}
	})
	t.Run("registration", func(t *testing.T) {
		reg := &stalling{Registry: memory.New(), entered: make(chan struct{})}
		a, err := New("svc", okHandler(), reg, testOptions(&journal{}, WithSignals(false), WithRegisterTimeout(time.Minute))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		select {
		case <-reg.entered:
		case <-time.After(20 * time.Second):
			t.Fatal("Register not called within 20s")
		}
		cancel()
		if err := wait(t, done); !errors.Is(err, ErrInterrupted) {
			t.Fatalf("Run = %v, want ErrInterrupted (wrapping the registration it cut short, as for a signal)", err)
		}
	})
}

// deadlineSeen records whether Register's ctx had a deadline.
type deadlineSeen struct {
	registry.Registry
	had  atomic.Bool
	seen atomic.Bool
}

func (d *deadlineSeen) Register(ctx context.Context, inst registry.Instance) error {
	_, ok := ctx.Deadline()
	d.had.Store(ok)
	d.seen.Store(true)
	return d.Registry.Register(ctx, inst)
}

// The first registration waits for the registry without a bound by
// default (a site whose registries come back last must not find every
// service exited); WithRegisterTimeout sets one.
func TestRun_FirstRegistrationHasNoDeadlineByDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want bool
	}{{"default", nil, false}, {"WithRegisterTimeout", []Option{WithRegisterTimeout(time.Minute)}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := &deadlineSeen{Registry: memory.New()}
			startStop(t, "svc", reg, tc.opts...)
			if !reg.seen.Load() || reg.had.Load() != tc.want {
				t.Fatalf("Register called %v, with a deadline %v; want a deadline %v", reg.seen.Load(), reg.had.Load(), tc.want)
			}
		})
	}
}

// signalChildEnv makes TestRun_SIGHUPStopsLikeSIGTERM the service process
// its parent signals, not the parent.
const signalChildEnv = "WARREN_APP_SIGNAL_CHILD"

// signalChild is the service: an App with signals on, a handler /slow that
// takes 700ms, its lifecycle and registry calls on stdout. Run's nil
// return is the test passing: the process exits 0.
func signalChild(t *testing.T) {
	out := log.NewSyncWriter(os.Stdout)
	logger := log.NewLogfmtLogger(out)
	j := &journal{}
	h := http.NewServeMux()
	h.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		logger.Log("msg", "slow entered")
		time.Sleep(700 * time.Millisecond)
		io.WriteString(w, "slow done")
	})
	reg := loggedRegistry{memory.New(), logger}
	a, err := New("svc", h, reg, testOptions(j, WithLogger(logger), WithSignals(true), WithGracePeriod(200*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// loggedRegistry writes the registry calls into the log.
type loggedRegistry struct {
	*memory.Registry
	l log.Logger
}

func (r loggedRegistry) Deregister(ctx context.Context, i registry.Instance) error {
	r.l.Log("registry", "deregister")
	return r.Registry.Deregister(ctx, i)
}

func (r loggedRegistry) Close() error {
	r.l.Log("registry", "close")
	return r.Registry.Close()
}

// child is a service process started by startSignalChild.
type child struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	out   []string
	lines chan string
	done  chan error
}

// startSignalChild runs this test binary as the service, through sh when
// wrap is set (`trap "" HUP; exec …`: nohup's ignored SIGHUP), and waits
// until it serves; it returns the child and its HTTP endpoint.
func startSignalChild(t *testing.T, name string, wrap bool) (*child, string) {
	t.Helper()
	args := []string{"-test.run=^" + name + "$", "-test.timeout=60s"}
	cmd := exec.Command(os.Args[0], args...)
	if wrap {
		cmd = exec.Command("sh", append([]string{"-c", `trap "" HUP; exec "$0" "$@"`, os.Args[0]}, args...)...)
	}
	cmd.Env = append(os.Environ(), signalChildEnv+"=1")
	cmd.Stderr = os.Stderr
	catchHangup(t)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 100), done: make(chan error, 1)}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.out = append(c.out, sc.Text())
			c.mu.Unlock()
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		c.done <- cmd.Wait()
	}()
	var endpoint string
	deadline := time.After(20 * time.Second)
	for endpoint == "" {
		select {
		case l := <-c.lines:
			if i := strings.Index(l, "endpoints=http://"); i >= 0 && strings.Contains(l, "phase=register") {
				endpoint = strings.Fields(l[i+len("endpoints="):])[0]
			}
		case <-deadline:
			t.Fatalf("the service did not register within 20s: %q", c.output())
		}
	}
	return c, endpoint
}

func (c *child) output() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.out)
}

// waitLine waits for a line of the child containing sub.
func (c *child) waitLine(t *testing.T, sub string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range c.output() {
			if strings.Contains(l, sub) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no line with %q within 10s: %q", sub, c.output())
}

// A SIGHUP (a closed terminal or SSH session) stops a service as SIGTERM
// does: withdraw, grace, drain (the request in flight completes), release,
// exit 0. It was Go's default, death at once with status 129 (report j53d
// finding 1). Under nohup, which starts it with SIGHUP ignored, SIGHUP
// stays ignored.
func TestRun_SIGHUPStopsLikeSIGTERM(t *testing.T) {
	if os.Getenv(signalChildEnv) != "" {
		signalChild(t)
		return
	}
	t.Run("stops gracefully", func(t *testing.T) {
		c, ep := startSignalChild(t, "TestRun_SIGHUPStopsLikeSIGTERM", false)
		type answer struct {
			body string
			err  error
		}
		got := make(chan answer, 1)
		go func() {
			resp, err := http.Get(ep + "/slow")
			if err != nil {
				got <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			got <- answer{string(b), err}
		}()
		c.waitLine(t, "slow entered")
		c.cmd.Process.Signal(syscall.SIGHUP)
		select {
		case err := <-c.done:
			if err != nil {
				t.Fatalf("the service exited with %v after SIGHUP, want 0; its log:\n%s", err, strings.Join(c.output(), "\n"))
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the service did not exit within 20s of SIGHUP")
		}
		if a := <-got; a.err != nil || a.body != "slow done" {
			t.Fatalf("the request in flight at SIGHUP: %q, %v; want it completed", a.body, a.err)
		}
		var order []string
		for _, l := range c.output() {
			for _, step := range []string{"registry=deregister", "phase=withdraw", "phase=grace", "phase=drain", "registry=close", "phase=release", "phase=exit"} {
				if strings.Contains(l, step) {
					order = append(order, step)
				}
			}
			if strings.Contains(l, "phase=withdraw") && !strings.Contains(l, `reason="signal hangup"`) {
				t.Errorf("withdraw line %q does not name the signal", l)
			}
		}
		want := []string{"registry=deregister", "phase=withdraw", "phase=grace", "phase=drain", "registry=close", "phase=release", "phase=exit"}
		if !slices.Equal(order, want) {
			t.Fatalf("after SIGHUP\n got %v\nwant %v\nlog:\n%s", order, want, strings.Join(c.output(), "\n"))
		}
	})
	t.Run("ignored under nohup", func(t *testing.T) {
		c, _ := startSignalChild(t, "TestRun_SIGHUPStopsLikeSIGTERM", true)
		c.cmd.Process.Signal(syscall.SIGHUP)
		select {
		case err := <-c.done:
			t.Fatalf("started with SIGHUP ignored, the service exited (%v) on SIGHUP; its log:\n%s", err, strings.Join(c.output(), "\n"))
		case <-time.After(1500 * time.Millisecond):
		}
		for _, l := range c.output() {
			if strings.Contains(l, "phase=withdraw") {
				t.Fatalf("started with SIGHUP ignored, the service withdrew on SIGHUP: %q", l)
			}
		}
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-c.done:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the service did not exit within 20s of SIGTERM")
		}
	})
}

// catchHangup makes a child this test starts begin with SIGHUP at its
// default, even when the test itself runs under nohup (`nohup make
// test`): the child would inherit nohup's ignored SIGHUP and, as it
// should, keep ignoring it. execve resets a caught signal to its
// default, and catching it here is what makes it caught.
func catchHangup(t *testing.T) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(ch) })
}
