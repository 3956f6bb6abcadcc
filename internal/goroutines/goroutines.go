// Package goroutines lets tests find the goroutines that run given code,
// to check that a Close or Stop ended the loops it owns. It reads every
// goroutine's stack, so it is for tests only.
package goroutines

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Running returns the stacks of the goroutines whose stack contains any of
// frames (e.g. "registry.(*Failover).follow(").
func Running(frames ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, f := range frames {
			if strings.Contains(g, f) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// Wait waits until the goroutines running any of frames number n, and
// fails t naming what after timeout (a goroutine just started may not be
// on the stacks yet; one just stopped may still be unwinding).
func Wait(t testing.TB, what string, n int, timeout time.Duration, frames ...string) {
	t.Helper()
	waitUntil(t, what, timeout, frames, func(got int) bool { return got == n }, "want %d", n)
}

// WaitAtMost waits until at most n goroutines run any of frames, and fails
// t naming what, with their stacks, after timeout.
func WaitAtMost(t testing.TB, what string, n int, timeout time.Duration, frames ...string) {
	t.Helper()
	waitUntil(t, what, timeout, frames, func(got int) bool { return got <= n }, "want at most %d", n)
}

func waitUntil(t testing.TB, what string, timeout time.Duration, frames []string, ok func(int) bool, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		g := Running(frames...)
		if ok(len(g)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines running %s after %s, "+want+":\n%s",
				what, len(g), strings.Join(frames, " or "), timeout, n, strings.Join(g, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
