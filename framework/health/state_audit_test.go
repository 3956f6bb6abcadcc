package health

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A failure, under CacheFor, is served no longer than the cache age: once
// the check passes again the report follows, then follows it back to a
// failure; no failed (or hung) run leaves state that outlives it. Bounded
// in time; judged on eventual state, not speed.
func TestCacheFor_FailureThenRecoveryThenFailureAreEachReported(t *testing.T) {
	var failing atomic.Bool
	s := NewSet(time.Second, CacheFor(100*time.Millisecond))
	s.Add("db", func(context.Context) error {
		if failing.Load() {
			return errors.New("down")
		}
		return nil
	})
	wait := func(want bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if s.Run(context.Background()).OK() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("report not OK=%v within 10s", want)
			}
		}
	}
	wait(true)
	failing.Store(true)
	wait(false)
	failing.Store(false)
	wait(true)
	failing.Store(true)
	wait(false)
}
