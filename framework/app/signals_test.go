package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
// second SIGTERM is the same request, not a second one forcing exit.
func TestSignals_RepeatWithinTheWindowIsTheSameRequest(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	log := &lines{}
	sw := watchSignals(sigs, log, time.Hour)
	defer sw.Close()
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGTERM
	waitFor(t, "the repeat logged", func() bool { return log.count("taken as the same request") == 1 })
	if !closed(sw.stop) || sw.first != syscall.SIGTERM {
		t.Fatalf("first signal did not ask for a stop (first %v)", sw.first)
	}
	if closed(sw.force) {
		t.Fatal("a signal repeated at once forced exit")
	}
	sw.Close()
	sw.Close() // idempotent
}

// A signal after the window is a second request: it forces exit.
func TestSignals_ALaterSignalForces(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	sw := watchSignals(sigs, &lines{}, time.Millisecond)
	defer sw.Close()
	sigs <- syscall.SIGTERM
	<-sw.stop
	time.Sleep(5 * time.Millisecond)
	sigs <- syscall.SIGINT
	select {
	case <-sw.force:
	case <-time.After(10 * time.Second):
		t.Fatal("a signal after the window did not force exit")
	}
	if sw.forcedBy != syscall.SIGINT {
		t.Fatalf("forced by %v", sw.forcedBy)
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
