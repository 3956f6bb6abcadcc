package client

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/outlier"
)

// A failed probe is one line per instance per reprobeLogEvery, counting
// the ones in between; an ejection and a readmission are always a line,
// and start the count over (report j48d: ten lines a second while every
// instance was dead).
func TestBreakerObserver_FailedProbesAreLoggedOncePerInterval(t *testing.T) {
	var logs bytes.Buffer
	b := newBreakerObserver("user", NopObserver{}, log.NewLogfmtLogger(&logs))
	now := time.Unix(1000, 0)
	b.reprobe.now = func() time.Time { return now }
	inst := "http://127.0.0.1:1/?id=u-1&name=user"
	lines := func() int { return strings.Count(logs.String(), "ejected again") }

	b.BreakerChanged(inst, outlier.Closed, outlier.Open)
	for range 50 { // a probe on every call, 100 ms apart
		b.BreakerChanged(inst, outlier.Open, outlier.HalfOpen)
		b.BreakerChanged(inst, outlier.HalfOpen, outlier.Open)
		now = now.Add(100 * time.Millisecond)
	}
	if n := lines(); n != 1 {
		t.Fatalf("%d failed-probe lines in 5 s, want 1:\n%s", n, logs.String())
	}
	now = now.Add(reprobeLogEvery)
	b.BreakerChanged(inst, outlier.HalfOpen, outlier.Open)
	if n := lines(); n != 2 || !strings.Contains(logs.String(), "failed_probes_not_logged=49") {
		t.Fatalf("after the interval: %d lines, want 2 with the 49 not logged:\n%s", n, logs.String())
	}
	b.BreakerChanged(inst, outlier.HalfOpen, outlier.Closed)
	b.BreakerChanged(inst, outlier.Closed, outlier.Open)
	b.BreakerChanged(inst, outlier.HalfOpen, outlier.Open)
	if n := lines(); n != 3 || !strings.Contains(logs.String(), "back in rotation") {
		t.Fatalf("a readmission did not start the count over: %d lines\n%s", n, logs.String())
	}
}

// A readmission without a probe (outlier.ReasonExpired: the cooldown was
// over and a failing instance needed the slot) does not claim the
// instance answered a probe: an on-call reading "answered its probe"
// would take it for a proven instance.
func TestBreakerObserver_AnUnprobedReadmissionSaysSo(t *testing.T) {
	var logs bytes.Buffer
	b := newBreakerObserver("user", NopObserver{}, log.NewLogfmtLogger(&logs))
	inst := "http://127.0.0.1:1/?id=u-1&name=user"
	b.BreakerChangedWith(inst, outlier.Change{From: outlier.Open, To: outlier.Closed, Reason: outlier.ReasonExpired, Out: time.Minute})
	if got := logs.String(); strings.Contains(got, "answered its probe") || !strings.Contains(got, "back in rotation unprobed") {
		t.Fatalf("log %q: want the unprobed readmission said as such", got)
	}
	logs.Reset()
	b.BreakerChangedWith(inst, outlier.Change{From: outlier.HalfOpen, To: outlier.Closed, Out: time.Minute})
	if got := logs.String(); !strings.Contains(got, "answered its probe") {
		t.Fatalf("log %q: want a probed readmission said as one", got)
	}
}
