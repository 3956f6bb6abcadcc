package shed

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// waitReadMax is the most waiting requests a reading counts: past it the
// count only says "very many", which refuses as well as an exact one.
const waitReadMax = 4096

// waitMaxGap is how far apart, in reading intervals, two readings may be
// and still belong to one streak: a longer gap means the process did not
// run (or had no requests), so what it finds after is not known to have
// lasted.
const waitMaxGap = 3

// waiting counts the requests waiting in front of the handler: the
// server's connections whose socket holds bytes nobody has read yet. A
// CPU-bound handler never holds many requests in flight, however many
// callers it has; its queue is there, in the kernel's socket buffers and
// in the Go runtime's run queue, before any of our code runs.
//
// The count is the instance's own queue and is bounded by its own
// connections, so a machine starved by other processes cannot raise it
// past the number of callers. What a stall can do is let requests pile
// up and find them all at once when the process runs again; a backlog
// the instance drains in a moment is no overload. So the signal arms
// only after the count stayed above the target, reading after reading,
// for a while (persist); once armed, every request counts afresh and is
// refused if more than the target wait at that moment, until the count
// has stayed at or below the target for hold.
//
// Counting afresh per request is what keeps an armed signal from
// refusing more than the excess: the queue of a CPU-bound service drains
// in a fraction of a millisecond, so a decision kept for a reading
// interval (10 ms) would refuse hundreds of requests that found room.
type waiting struct {
	poll *poller // nil: the signal is off

	mu   sync.Mutex
	idle map[net.Conn]struct{} // connections between requests, for Stats

	at    atomic.Int64 // unix ns of the last reading
	last  atomic.Int64 // count at the last reading
	conns atomic.Int64 // connections between requests at the last reading
	armed atomic.Bool  // requests that find more than the target waiting are refused

	// closed is set by Close: no connection is counted or tracked after
	// it (checked under mu for the idle set, under rmu for readings).
	closed atomic.Bool

	rmu sync.Mutex  // held by the request taking a reading
	ctl waitControl // its settings are fixed at New; the rest under rmu
}

// waitControl is the arming rule, apart from the readings so that it can
// be tested with any sequence of them.
type waitControl struct {
	target  int64 // waiting requests; 0: the signal is off
	every   int64 // ns between readings
	persist int64 // ns above target before arming
	hold    int64 // ns at or below target before disarming

	prev      int64 // unix ns of the previous reading
	aboveFrom int64 // start of the current streak above target, 0 if none
	lastAbove int64 // the last reading above target
	armed     bool
}

// update folds the reading w taken at now in and reports whether the
// signal is armed: whether requests that find more than the target
// waiting are refused until the next reading.
func (c *waitControl) update(now, w int64) bool {
	gap := now - c.prev
	c.prev = now
	if c.armed && gap >= c.hold {
		// Readings are taken by requests: none for the hold means
		// nothing came that could wait, or the process did not run —
		// no queue that lasted either way. An incident's arming must
		// not refuse the first burst after a quiet spell at once.
		c.armed = false
	}
	if w <= c.target {
		c.aboveFrom = 0
		if c.armed && now-c.lastAbove >= c.hold {
			c.armed = false
		}
		return c.armed
	}
	if c.aboveFrom == 0 || gap > waitMaxGap*c.every {
		c.aboveFrom = now
	}
	c.lastAbove = now
	if now-c.aboveFrom >= c.persist {
		c.armed = true
	}
	return c.armed
}

// connState puts each new connection of the server in the count (a
// closed one leaves it by itself; a hijacked one is taken out: its bytes
// are no longer requests) and tracks the connections between requests.
func (q *waiting) connState(c net.Conn, s http.ConnState) {
	if q.poll == nil || q.closed.Load() {
		return
	}
	switch s {
	case http.StateNew:
		q.poll.add(c) // nothing once closed
	case http.StateHijacked:
		q.poll.remove(c)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed.Load() { // Close emptied the set: keep no connection past it
		return
	}
	switch s {
	case http.StateNew, http.StateIdle:
		if q.idle == nil {
			q.idle = map[net.Conn]struct{}{}
		}
		q.idle[c] = struct{}{}
	default:
		delete(q.idle, c)
	}
}

// read takes a reading when one is due.
func (q *waiting) read(now int64) {
	if q.poll == nil {
		return
	}
	last := q.at.Load()
	if now-last < q.ctl.every || !q.at.CompareAndSwap(last, now) {
		return
	}
	if !q.rmu.TryLock() {
		return
	}
	defer q.rmu.Unlock()
	if q.closed.Load() { // a reading now would count nothing and keep what it found
		return
	}
	w := int64(q.poll.count(waitReadMax))
	q.mu.Lock()
	n := len(q.idle)
	q.mu.Unlock()
	q.last.Store(w)
	q.conns.Store(int64(n))
	q.armed.Store(q.ctl.update(now, w))
}

// refuse reports whether the request at hand is refused for waiting: the
// signal is armed and more than the target wait now.
func (q *waiting) refuse() bool {
	if !q.armed.Load() {
		return false
	}
	t := int(q.ctl.target)
	return q.poll.count(t+1) > t
}

// netConner is a connection wrapper that gives its connection out
// (tls.Conn, httptransport.JSONErrors' connections).
type netConner interface{ NetConn() net.Conn }

// rawConn unwraps c down to the connection that has the socket.
func rawConn(c net.Conn) net.Conn {
	for range 8 { // wrappers do not nest deeper; a loop would be a bug
		w, ok := c.(netConner)
		if !ok {
			return c
		}
		c = w.NetConn()
	}
	return c
}

// The waiting signal's reading interval, and how long the count must stay
// at or below the target before an armed signal lets go: the longest
// Retry-After the shedder sends, so the callers it turned away come back
// within it and their wave is cut at once, not after persist again.
const (
	waitEvery = 10 * time.Millisecond
	waitHold  = 5 * time.Second
)

// ConnState is an http.Server ConnState hook that lets the limiter count
// the requests waiting in front of the handler (the waiting signal):
// srv.ConnState = l.ConnState. transport/httpserver sets it. A server
// that does not call it never sheds for waiting. An HTTP/2 connection
// with unread frames counts as one waiting request, however many it
// carries (its reader drains the socket as fast as it runs).
func (l *Limiter) ConnState(c net.Conn, s http.ConnState) { l.wait.connState(c, s) }

// close ends the count: the poller's epoll set is released, the idle set
// emptied, and a reading under way is waited for and forgotten, so the
// signal neither refuses nor reports a count from then on.
func (q *waiting) close() error {
	if q.poll == nil || !q.closed.CompareAndSwap(false, true) {
		return nil
	}
	q.mu.Lock()
	q.idle = nil
	q.mu.Unlock()
	err := q.poll.close()
	q.rmu.Lock()
	q.armed.Store(false)
	q.last.Store(0)
	q.conns.Store(0)
	q.rmu.Unlock()
	return err
}

// Close releases what the waiting signal holds: its epoll descriptor
// (WithWaitingTarget; a Limiter without the signal holds nothing). From
// then on the signal counts nothing and never refuses, while the rest of
// the Limiter goes on deciding: Close may come while a server still
// admits requests and reports connections (Acquire, Release, ConnState
// and Stats stay safe). Call it once every server using the Limiter has
// stopped; calling it again does nothing and returns nil. bootstrap hands
// the limiter it makes to the App, which closes it in its release phase
// and on a failed start-up (docs/overload.md).
func (l *Limiter) Close() error { return l.wait.close() }
