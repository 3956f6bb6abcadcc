package app

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
)

// lifecycleGoroutines are the stacks of goroutines running the App's
// code, its signal watcher or a transport's: none may outlive Run.
func lifecycleGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "framework/app.(*App)") || strings.Contains(s, "internal/stopsig.") ||
			strings.Contains(s, "transport/httpserver.") || strings.Contains(s, "transporttest.") ||
			strings.Contains(s, "framework/app.(*dying)") {
			out = append(out, s)
		}
	}
	return out
}

// Whichever way Run ends, a clean stop or a start-up that failed in any
// phase, it leaves no goroutine of its own, of its signal watcher or of a
// transport behind (report l1: every goroutine has an owner, and Run's
// end is theirs). Goroutines end shortly after their owner returns, so
// the count is waited for, within 10 s.
func TestRun_LeavesNoGoroutineBehindWhicheverWayItEnds(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"listen failed", func(t *testing.T) {
			a, err := New("svc", okHandler(), memory.New(), testOptions(&journal{}, WithServer(transporttest.NewLineEcho(busy.Addr().String())))...)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Run(context.Background()); err == nil {
				t.Fatal("Run = nil with a port in use")
			}
		}},
		{"self-check failed", func(t *testing.T) {
			a, err := New("svc", okHandler(), memory.New(), testOptions(&journal{}, WithAdvertise(dead), WithSelfCheckTimeout(200*time.Millisecond))...)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Run(context.Background()); err == nil {
				t.Fatal("Run = nil with a refused advertised address")
			}
		}},
		{"registration interrupted", func(t *testing.T) {
			reg := &stalling{Registry: memory.New(), entered: make(chan struct{})}
			a, err := New("svc", okHandler(), reg, testOptions(&journal{}, WithServer(transporttest.NewLineEcho("127.0.0.1:0")))...)
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
			if err := wait(t, done); err == nil {
				t.Fatal("Run = nil, cancelled during the registration")
			}
		}},
		{"transport stopped during the registration", func(t *testing.T) {
			reg := &stalling{Registry: memory.New(), entered: make(chan struct{})}
			echo := &dying{Server: transporttest.NewLineEcho("127.0.0.1:0"), die: make(chan struct{})}
			a, err := New("svc", okHandler(), reg, testOptions(&journal{}, WithServer(echo))...)
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
			close(echo.die)
			if err := wait(t, done); err == nil {
				t.Fatal("Run = nil with a transport stopped")
			}
		}},
		{"stopped", func(t *testing.T) {
			a, err := New("svc", okHandler(), memory.New(), testOptions(&journal{}, WithServer(transporttest.NewLineEcho("127.0.0.1:0")),
				WithReadinessCheck("dep", func(context.Context) error { return nil }), WithWatchdog(50*time.Millisecond, 3))...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := start(t, a, ctx)
			if len(lifecycleGoroutines()) == 0 { // the filter sees them while they run
				t.Error("no goroutine of the lifecycle seen while it runs")
			}
			cancel()
			if err := wait(t, done); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.run(t)
			deadline := time.Now().Add(10 * time.Second)
			for left := lifecycleGoroutines(); len(left) > 0; left = lifecycleGoroutines() {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutine(s) of the lifecycle left 10s after Run returned:\n%s", len(left), strings.Join(left, "\n\n"))
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
