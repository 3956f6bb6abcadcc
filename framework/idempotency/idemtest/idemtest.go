// Package idemtest checks a keyed method across the gap package
// idempotency closes in the effect: an attempt stopped (SIGSTOP, a hang)
// before or after its write, and before its answer was recorded, whose
// claim a retry on another instance takes over once it expired; then the
// stopped attempt resumes. Both must answer the same effect, applied once.
//
// Put a Pause in the stopped instance's store (a wrapper around the real
// store whose write runs the real one through Around) and run the two
// attempts with Takeover.
package idemtest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// Wait bounds each step of Takeover: far beyond idempotency.DefaultClaimTTL,
// so a loaded machine only makes the test slower.
const Wait = 30 * time.Second

// Pause stops the first attempt that reaches it until Resume.
type Pause struct {
	reached, resume chan struct{}
	once, resumed   sync.Once
}

// NewPause returns a pause no attempt has reached.
func NewPause() *Pause {
	return &Pause{reached: make(chan struct{}), resume: make(chan struct{})}
}

// Here stops the first caller until Resume; later callers pass.
func (p *Pause) Here() {
	first := false
	p.once.Do(func() { first = true; close(p.reached) })
	if first {
		<-p.resume
	}
}

// Around runs write, stopping the first caller at Here before it, or
// after it when after is set.
func (p *Pause) Around(after bool, write func()) {
	if !after {
		p.Here()
	}
	write()
	if after {
		p.Here()
	}
}

// Resume lets the stopped attempt go on. It may be called more than once.
func (p *Pause) Resume() { p.resumed.Do(func() { close(p.resume) }) }

// Answers are what the two attempts of one keyed call answered.
type Answers[T any] struct {
	Stopped, Retry       T
	StoppedErr, RetryErr error
}

// Takeover runs stopped (an attempt of a keyed call on the instance whose
// store holds p) until it reaches p, then retry (the same call, same key,
// on another instance) until it no longer answers idempotency.ErrInProgress
// — the stopped attempt's claim expired and the retry took it over — and
// then resumes the stopped attempt and waits for its answer. Each step
// fails t after Wait.
func Takeover[T any](t testing.TB, p *Pause, stopped, retry func() (T, error)) Answers[T] {
	t.Helper()
	t.Cleanup(p.Resume) // never leave the stopped attempt blocked
	var a Answers[T]
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Stopped, a.StoppedErr = stopped()
	}()
	select {
	case <-p.reached:
	case <-done:
		t.Fatalf("the attempt to stop never reached the pause: %v", a.StoppedErr)
	case <-time.After(Wait):
		t.Fatalf("the attempt to stop did not reach the pause in %v", Wait)
	}
	for deadline := time.Now().Add(Wait); ; {
		a.Retry, a.RetryErr = retry()
		if !errors.Is(a.RetryErr, idempotency.ErrInProgress) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retry was still told %q after %v", idempotency.CodeInProgress, Wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Resume()
	select {
	case <-done:
	case <-time.After(Wait):
		t.Fatalf("the resumed attempt did not answer in %v", Wait)
	}
	return a
}
