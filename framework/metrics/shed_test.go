package metrics_test

import (
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/shed"
)

// shedSeries gathers reg and returns each warren_shed_* sample by name and
// outcome label.
func shedSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "{" + lp.GetName() + "=" + lp.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			}
		}
	}
	return got
}

func TestShed_SeriesFollowTheLimiter(t *testing.T) {
	l, err := shed.New(shed.WithQueueProbe(nil), shed.WithLimits(2, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics.NewShed(reg, l)

	a, _ := l.Acquire()
	b, _ := l.Acquire()
	l.Acquire() // refused: the limit is 2
	want := map[string]float64{
		"warren_shed_requests_total{outcome=admitted}":     2,
		"warren_shed_requests_total{outcome=shed_limit}":   1,
		"warren_shed_requests_total{outcome=shed_queue}":   0,
		"warren_shed_requests_total{outcome=shed_waiting}": 0,
		"warren_shed_waiting":                              0,
		"warren_shed_waiting_target":                       0,
		"warren_shed_idle_connections":                     0,
		"warren_shed_limit":                                2,
		"warren_shed_in_flight":                            2,
		"warren_shed_queue_length":                         0,
		"warren_shed_queue_target":                         0, // the queue signal is off, like the waiting one
		"warren_shed_queue_delay_seconds":                  0,
	}
	got := shedSeries(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	a.Release()
	b.Release()
	if n := shedSeries(t, reg)["warren_shed_in_flight"]; n != 0 {
		t.Fatalf("in flight after releases = %v, want 0", n)
	}
}

// With the queue signal on, its target is what the limiter keeps to:
// 8 per CPU by default.
func TestShed_QueueTargetShowsWhenTheSignalIsOn(t *testing.T) {
	l, err := shed.New(shed.WithQueueProbe(shed.RuntimeProbe()))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics.NewShed(reg, l)
	if got, want := shedSeries(t, reg)["warren_shed_queue_target"], float64(8*runtime.GOMAXPROCS(0)); got != want {
		t.Errorf("warren_shed_queue_target = %v, want %v", got, want)
	}
}

// Requests waiting on idle connections past the target are counted and
// shown: the waiting signal's series.
func TestShed_WaitingSeries(t *testing.T) {
	l, err := shed.New(shed.WithWaitingTarget(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics.NewShed(reg, l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := runtime.GOMAXPROCS(0) + 1
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		l.ConnState(s, http.StateNew) // as http.Server reports a new connection
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	// Refused once a reading (one every 10 ms) finds the requests at the
	// server's sockets.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		tok, why := l.Acquire()
		tok.Release()
		if why == shed.ReasonWaiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never refused for waiting: %+v", l.Stats())
		}
	}
	got := shedSeries(t, reg)
	for k, v := range map[string]float64{
		"warren_shed_requests_total{outcome=shed_waiting}": 1,
		"warren_shed_waiting":                              float64(n),
		"warren_shed_idle_connections":                     float64(n),
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
