package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

func TestShutdown_InFlightCompletesReadyz503DuringGraceNewRequestsRefused(t *testing.T) {
	j := &journal{}
	reg := memory.New()
	entered := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	a, err := New("slowsvc", mux, reg, testOptions(j, WithGracePeriod(600*time.Millisecond), WithDrainTimeout(10*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	base := a.Instance().Endpoints[0]
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

	if st := status(t, fresh, base+"/readyz"); st != 200 {
		t.Fatalf("readyz before shutdown = %d", st)
	}
	type result struct {
		code int
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := fresh.Get(base + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-entered
	cancel() // like SIGTERM

	// Grace: withdrawn and 503 on readiness, but still serving.
	deadline := time.Now().Add(2 * time.Second)
	for status(t, fresh, base+"/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("readyz never turned 503")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(reg.Instances("slowsvc")); n != 0 {
		t.Fatalf("still %d instance(s) in discovery during grace", n)
	}
	if st := status(t, fresh, base+"/fast"); st != 200 {
		t.Fatalf("request during grace = %d, want 200", st)
	}

	// Drain: the listener closes, so new connections are refused while the
	// in-flight request is still running.
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, err := fresh.Get(base + "/fast")
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new requests still accepted during drain (last err %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	r := <-slow
	if r.err != nil || r.code != 200 || r.body != "done" {
		t.Fatalf("in-flight request = %+v, want 200 done", r)
	}
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestRun_SIGTERMShutsDownCleanlyAndSecondSignalForces(t *testing.T) {
	t.Run("one signal", func(t *testing.T) {
		j := &journal{}
		a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithSignals(true))...)
		if err != nil {
			t.Fatal(err)
		}
		done := start(t, a, context.Background())
		syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		if err := wait(t, done); err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("second signal", func(t *testing.T) {
		j := &journal{}
		entered := make(chan struct{})
		block := make(chan struct{})
		defer close(block)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { close(entered); <-block })
		a, err := New("svc", h, memory.New(), testOptions(j, WithSignals(true), WithGracePeriod(30*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		done := start(t, a, context.Background())
		go http.Get(a.Instance().Endpoints[0] + "/hang")
		<-entered
		syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		// Wait until the first signal is being handled (withdraw logged).
		deadline := time.Now().Add(5 * time.Second)
		for indexOf(j.list(), "phase:grace") < 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		// A signal within repeatWindow of the first would be taken as
		// the same one, delivered twice.
		time.Sleep(repeatWindow + 100*time.Millisecond)
		start := time.Now()
		syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		err = wait(t, done)
		if !errors.Is(err, ErrForced) {
			t.Fatalf("Run = %v, want ErrForced", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("forced exit took %s", took)
		}
		// The drain was cut by the signal, not by its timeout.
		if e := j.phaseErr("drain"); !strings.Contains(e, ErrForced.Error()) || strings.Contains(e, "timeout") {
			t.Fatalf("drain logged err %q, want it to name the forced exit", e)
		}
	})
}

// A withdrawal that failed leaves the instance listed: its phase line is
// a warning, so alerting on warn sees it; a clean one stays info.
func TestShutdown_FailedWithdrawIsLoggedAsAWarning(t *testing.T) {
	for _, c := range []struct {
		name string
		reg  registry.Registry
		want string
	}{
		{"failed", failingDeregister{memory.New()}, "level=warn svc=orders phase=withdraw"},
		{"clean", memory.New(), "level=info svc=orders phase=withdraw"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out syncbuf.Buffer
			startStop(t, "orders", c.reg, WithLogger(log.NewLogfmtLogger(&out)))
			if !strings.Contains(out.String(), c.want) {
				t.Fatalf("log lacks %q:\n%s", c.want, out.String())
			}
		})
	}
}

// deadlineDeregister is a memory registry that notes how far ahead the
// deadline of Deregister's context was when it was called.
type deadlineDeregister struct {
	*memory.Registry
	ahead chan time.Duration
}

func (r deadlineDeregister) Deregister(ctx context.Context, i registry.Instance) error {
	ahead := time.Duration(-1) // no deadline
	if dl, ok := ctx.Deadline(); ok {
		ahead = time.Until(dl)
	}
	r.ahead <- ahead
	return r.Registry.Deregister(ctx, i)
}

// WithWithdrawTimeout is the bound phase 6 hands the registry: a registry
// reached over a slow link needs more than the default 5 s.
func TestShutdown_WithdrawTimeoutBoundsTheDeregistration(t *testing.T) {
	for _, c := range []struct {
		name     string
		opts     []Option
		min, max time.Duration
	}{
		{"default", nil, 0, DefaultWithdrawTimeout},
		{"WithWithdrawTimeout", []Option{WithWithdrawTimeout(30 * time.Second)}, DefaultWithdrawTimeout, 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := deadlineDeregister{memory.New(), make(chan time.Duration, 1)}
			startStop(t, "orders", reg, c.opts...)
			ahead := <-reg.ahead
			// 25 s of slack for a machine that stalls between setting the
			// deadline and the call.
			if ahead <= c.min || ahead > c.max {
				t.Fatalf("Deregister's deadline was %s ahead, want within (%s, %s]", ahead, c.min, c.max)
			}
		})
	}
	if _, err := New("orders", okHandler(), memory.New(), WithWithdrawTimeout(0)); err == nil || !strings.Contains(err.Error(), "WithWithdrawTimeout") {
		t.Fatalf("New with a zero withdraw timeout = %v, want an error naming the option", err)
	}
}
