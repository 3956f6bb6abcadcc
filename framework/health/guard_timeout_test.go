package health

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestGuard_EachCheckGetsTheDocumented2sDeadline: docs/lifecycle.md says
// each readiness check gets a 2 s deadline. TestNewSet_ZeroTimeoutMeansDefault
// compares with DefaultTimeout itself, so a changed constant passed it;
// this compares with the documented value. The upper bound is exact (the
// deadline is set before the check runs); the lower one gives a slow
// machine a second between the two.
func TestGuard_EachCheckGetsTheDocumented2sDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var left atomic.Int64
	s := NewSet(0)
	s.Add("db", func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		left.Store(int64(time.Until(d)))
		return nil
	})
	if rep := s.Run(ctx); !rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	if l := time.Duration(left.Load()); l > 2*time.Second || l < time.Second {
		t.Fatalf("the check had %s left; docs/lifecycle.md says each check gets 2s", l)
	}
}
