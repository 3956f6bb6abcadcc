package shed

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// socketPair returns the server's end of a real loopback TCP connection
// and the caller's end.
func socketPair(t *testing.T, ln net.Listener) (server, caller net.Conn) {
	t.Helper()
	caller, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caller.Close(); server.Close() })
	return server, caller
}

// idleConns opens n connections, reports their server ends to l as idle
// (wrapped as tls.Conn and httptransport wrap them) and returns both ends.
func idleConns(t *testing.T, l *Limiter, n int) (servers, callers []net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	for range n {
		s, c := socketPair(t, ln)
		w := wrapped{wrapped{s}}
		l.ConnState(w, http.StateNew)
		servers, callers = append(servers, w), append(callers, c)
	}
	return servers, callers
}

// wrapped is a connection wrapper that gives its connection out.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

const request = "GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n"

// send writes a request on each caller's end and waits until the kernel
// holds it unread at the server's end.
func send(t *testing.T, callers, servers []net.Conn) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the waiting signal counts on Linux only")
	}
	for _, c := range callers {
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range servers {
		for !unread(s) {
			if time.Now().After(deadline) {
				t.Fatal("a request written 20s ago is not at the server's socket")
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// drain reads the requests, as the server does when it gets to them.
func drain(t *testing.T, servers []net.Conn) {
	t.Helper()
	buf := make([]byte, len(request))
	for _, s := range servers {
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatal(err)
		}
	}
}

func acquire(t *testing.T, l *Limiter, want Reason, when string) {
	t.Helper()
	tok, why := l.Acquire()
	tok.Release()
	if why != want {
		t.Fatalf("%s: Acquire = %q, want %q (stats %+v)", when, why, want, l.Stats())
	}
}

// refusedOnceItLasts reads a queue that has just formed every persist/10:
// admitted until it has lasted persist, then refused.
func refusedOnceItLasts(t *testing.T, l *Limiter, clk *fakeClock, persist time.Duration, what string) {
	t.Helper()
	acquire(t, l, Admitted, what+", just formed")
	for range 9 {
		clk.Add(persist / 10)
		acquire(t, l, Admitted, what+", not lasted yet")
	}
	clk.Add(persist / 10)
	acquire(t, l, ReasonWaiting, what+", lasted the persistence")
}

// The waiting signal on real sockets: requests that wait unread on idle
// connections past the target are refused once they have lasted, at once
// while the signal is armed, and no longer a while after the queue went.
func TestWaiting_RefusesRequestsWaitingInFrontOfTheHandlerOnceItLasts(t *testing.T) {
	clk := newFakeClock()
	const persist = 100 * time.Millisecond
	l := mustNew(t, WithClock(clk.Now), WithWaitingTarget(1, persist))
	target := runtime.GOMAXPROCS(0)
	servers, callers := idleConns(t, l, target+1)
	if st := l.Stats(); st.WaitingTarget != int64(target) {
		t.Fatalf("target %d, want %d (1 per CPU)", st.WaitingTarget, target)
	}

	acquire(t, l, Admitted, "no request waiting")
	clk.Add(waitEvery)
	send(t, callers, servers)
	refusedOnceItLasts(t, l, clk, persist, "the queue")
	acquire(t, l, ReasonWaiting, "until the next reading")
	st := l.Stats()
	if st.ShedWaiting != 2 || st.Waiting != int64(target+1) || st.Conns != int64(target+1) || !st.Refusing {
		t.Fatalf("stats %+v: want 2 shed for waiting, %d waiting on %[2]d connections, refusing", st, target+1)
	}

	// The server reads one request: the queue is at the target, not
	// above. Armed, each request counts afresh: admitted before the next
	// reading is due (a decision kept from the last reading would refuse
	// it, and every other request until then).
	drain(t, servers[:1])
	acquire(t, l, Admitted, "armed, the queue drained to the target since the last reading")
	// A new request waits: armed, the signal refuses at once.
	send(t, callers[:1], servers[:1])
	acquire(t, l, ReasonWaiting, "armed, the queue is above the target again")

	// A hijacked connection's bytes are not requests.
	l.ConnState(servers[0], http.StateHijacked)
	acquire(t, l, Admitted, "one connection hijacked")
	l.ConnState(servers[0], http.StateNew)
	acquire(t, l, ReasonWaiting, "the connection counted again")

	// The queue goes for longer than the hold: disarmed, a new queue must
	// last again before it is refused.
	drain(t, servers)
	for range 11 {
		clk.Add(waitHold / 10)
		acquire(t, l, Admitted, "no queue")
	}
	send(t, callers, servers)
	clk.Add(waitEvery)
	refusedOnceItLasts(t, l, clk, persist, "disarmed, a new queue")

	// Closed connections are forgotten.
	for _, s := range servers {
		s.Close()
		l.ConnState(s, http.StateClosed)
	}
	clk.Add(waitEvery)
	acquire(t, l, Admitted, "every connection closed")
	if st := l.Stats(); st.Conns != 0 || st.Waiting != 0 {
		t.Fatalf("after closing: stats %+v, want no connections, none waiting", st)
	}
}

// The signal is off by default: the same queue is never refused.
func TestWaiting_OffByDefault(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithClock(clk.Now))
	servers, callers := idleConns(t, l, runtime.GOMAXPROCS(0)+1)
	send(t, callers, servers)
	for range 20 {
		clk.Add(waitEvery)
		acquire(t, l, Admitted, "the waiting signal is off by default")
	}
	if st := l.Stats(); st.WaitingTarget != 0 || st.Conns != 0 {
		t.Fatalf("stats %+v: want no target and no connections tracked", st)
	}
}

// A process the OS did not run finds, when it runs again, every request
// that arrived meanwhile waiting: one reading across such a gap starts a
// streak, it does not continue one. A burst the instance drains before
// the persistence is never refused.
func TestWaitControl_AStallsBurstIsNotAQueueThatLasted(t *testing.T) {
	ms := int64(time.Millisecond)
	c := waitControl{target: 10, every: 10 * ms, persist: 100 * ms, hold: 1000 * ms}
	now := int64(1_000_000) * ms
	step := func(d, w int64, want bool, what string) {
		t.Helper()
		now += d
		if got := c.update(now, w); got != want {
			t.Fatalf("%s: armed %v, want %v (%+v)", what, got, want, c)
		}
	}
	step(0, 50, false, "a queue")
	step(90*ms, 50, false, "the process stalled 90 ms; the queue is still there")
	step(30*ms, 50, false, "30 ms on; 120 ms since the first reading, but only 30 ms since the stall")
	step(10*ms, 3, false, "the burst drained")
	for range 10 {
		step(10*ms, 50, false, "a queue lasting less than 100 ms")
	}
	step(10*ms, 50, true, "a queue lasting 100 ms, read every 10 ms")
	step(500*ms, 5, true, "below the target, still armed (each request counts afresh)")
	step(10*ms, 50, true, "armed: refused at once")
	step(1000*ms, 5, false, "below the target for the hold: disarmed")
	step(10*ms, 50, false, "disarmed")
}

// An armed signal does not outlive a spell without readings: readings
// are taken by requests, so a gap longer than the hold means nothing
// came that could have waited (or the process did not run, which is no
// queue that lasted either). Before, the signal armed by an incident
// stayed armed through an hour of quiet, and the first burst after it
// was refused at once, without the persistence a fresh instance asks.
func TestWaitControl_AnArmedSignalDoesNotOutliveAQuietSpell(t *testing.T) {
	ms := int64(time.Millisecond)
	c := waitControl{target: 10, every: 10 * ms, persist: 100 * ms, hold: 1000 * ms}
	now := int64(1_000_000) * ms
	step := func(d, w int64, want bool, what string) {
		t.Helper()
		now += d
		if got := c.update(now, w); got != want {
			t.Fatalf("%s: armed %v, want %v (%+v)", what, got, want, c)
		}
	}
	for range 10 {
		step(10*ms, 50, false, "a queue lasting less than 100 ms")
	}
	step(10*ms, 50, true, "a queue lasting 100 ms: armed")
	step(3_600_000*ms, 50, false, "an hour without a reading, then a burst: a new streak")
	for range 9 {
		step(10*ms, 50, false, "the burst lasting less than 100 ms")
	}
	step(10*ms, 50, true, "the burst lasting 100 ms: armed again")
	step(1500*ms, 50, false, "1.5 s (past the hold) without a reading: a new streak")
}
