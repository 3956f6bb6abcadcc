package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNext_GrowsWithinBoundsAndResets(t *testing.T) {
	b := New(10*time.Millisecond, 80*time.Millisecond)
	steps := []time.Duration{10, 20, 40, 80, 80, 80}
	for round := range 50 {
		b.Reset()
		for i, s := range steps {
			step := s * time.Millisecond
			if d := b.Next(); d < step/2 || d > step {
				t.Fatalf("round %d wait %d = %s, want in [%s, %s]", round, i, d, step/2, step)
			}
		}
	}
}

func TestNext_SpreadsWaits(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 100 {
		b := New(time.Second, time.Second)
		seen[b.Next()] = true
	}
	if len(seen) < 50 {
		t.Fatalf("only %d distinct waits out of 100: no jitter", len(seen))
	}
}

func TestSleep_EndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep reported a full wait after cancel")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep cut short")
	}
}

func TestNth_IsTheNthNextWithoutState(t *testing.T) {
	const lo, hi = 10 * time.Millisecond, 80 * time.Millisecond
	for n, step := range map[int]time.Duration{0: lo, 1: lo, 2: 2 * lo, 3: 4 * lo, 4: hi, 40: hi, 100: hi} {
		for range 50 {
			if d := Nth(lo, hi, n); d < step/2 || d > step {
				t.Fatalf("Nth(%d) = %s, want within [%s, %s]", n, d, step/2, step)
			}
		}
	}
	if d := Nth(hi, lo, 1); d < hi/2 || d > hi {
		t.Fatalf("max below min: Nth = %s, want within [%s, %s]", d, hi/2, hi)
	}
}

// Nth never waits longer than maxWait, however many retries: the cap
// holds between the step that first reaches it and the 32nd.
func TestNth_CapsEveryStep(t *testing.T) {
	const lo, hi = 10 * time.Millisecond, 80 * time.Millisecond
	for _, n := range []int{5, 6, 10, 31, 32} {
		for range 20 {
			if d := Nth(lo, hi, n); d < hi/2 || d > hi {
				t.Fatalf("Nth(%d) = %s, want within [%s, %s]", n, d, hi/2, hi)
			}
		}
	}
}

// A doubling that overflows int64 waits maxWait, not nothing.
func TestNth_OverflowWaitsTheCap(t *testing.T) {
	lo, hi := time.Duration(1)<<40, time.Duration(1)<<41
	// lo<<23 is 1<<63: negative as an int64.
	if d := Nth(lo, hi, 24); d < hi/2 || d > hi {
		t.Fatalf("Nth(24) = %s, want within [%s, %s]", d, hi/2, hi)
	}
}

// New takes a max below min as min, as its doc says: every wait is min's.
func TestNew_MaxBelowMinIsMin(t *testing.T) {
	const lo, hi = 80 * time.Millisecond, 10 * time.Millisecond
	b := New(lo, hi)
	for i := range 5 {
		if d := b.Next(); d < lo/2 || d > lo {
			t.Fatalf("wait %d = %s, want within [%s, %s]", i, d, lo/2, lo)
		}
	}
}

// A closed wake ends the sleep at once, as the whole d would; ctx still
// wins over neither.
func TestSleepUnless_EndsWhenWoken(t *testing.T) {
	wake := make(chan struct{})
	close(wake)
	start := time.Now()
	if !SleepUnless(context.Background(), time.Hour, wake) {
		t.Fatal("woken sleep reported the context ended")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("woken sleep took %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if SleepUnless(ctx, time.Hour, make(chan struct{})) {
		t.Fatal("a sleep whose context ended reported the whole wait passed")
	}
}
