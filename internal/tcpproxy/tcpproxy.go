// Package tcpproxy is the TCP proxy tests put between clients and a
// server: it forwards connections from a loopback port of its own to a
// target, and can cut every connection for as long as a test wants (a
// network partition, as the clients see it), delay the answers (a slow
// server) and count the requests that carry a marker.
package tcpproxy

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-mesh/warren/internal/acceptloop"
)

// Proxy forwards TCP connections from its own 127.0.0.1 port to a target.
// Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	mark   []byte

	delay   atomic.Int64 // nanoseconds added before each chunk of the answer
	matched atomic.Int64
	silent  atomic.Bool // chunks are dropped both ways; connections stay open
	// acceptErrors counts failed accepts, so a test can tell that it
	// made one fail.
	acceptErrors atomic.Int64

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	blocked bool
	closed  bool
	done    chan struct{} // closed by Close: ends delays in progress
	// changed is closed and replaced by SetDelay and Block, so answers
	// held by a delay look again: a stall that ends releases them, a cut
	// ends their connections.
	changed chan struct{}
	wg      sync.WaitGroup
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithMark counts the chunks sent to the target that contain mark (say
// "GET /users/"); see Matched.
func WithMark(mark []byte) Option { return func(p *Proxy) { p.mark = mark } }

// New listens on a free 127.0.0.1 port and forwards to target. Close
// stops it.
func New(target string, opts ...Option) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcpproxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, done: make(chan struct{}), changed: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay adds d before each chunk the target sends back. HTTP/1.1
// answers one request at a time per connection, so every answer is d late.
// A new delay applies to the answers held already, counted from when each
// arrived: SetDelay(0) releases them all at once.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay.Store(int64(d))
	p.wakeLocked()
}

// wakeLocked makes every held answer look at the delay and its
// connection again.
func (p *Proxy) wakeLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Matched is how many chunks towards the target contained the mark.
func (p *Proxy) Matched() int64 { return p.matched.Load() }

// SetSilent drops every chunk in both directions while on, keeping the
// connections open: a partition that sends no reset, which a client
// notices only when its own read deadline passes. Turn it off with the
// connections' streams broken (bytes were lost): clients must reconnect.
func (p *Proxy) SetSilent(on bool) { p.silent.Store(on) }

// Block cuts every connection and refuses new ones (accepted and closed
// at once) until Unblock.
func (p *Proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c) // so a held answer sees its connection is gone
	}
	p.wakeLocked()
}

// Unblock lets connections through again.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// accept runs the proxy's accept loop until Close. A failed accept
// (EMFILE: the process out of descriptors for a moment) is waited out, and
// Close ends the wait at once: returning left a port nobody accepted on,
// and a fault test failed long after, with clients hanging on the proxy.
func (p *Proxy) accept() {
	defer p.wg.Done()
	_ = acceptloop.Run(p.ln, p.serve, acceptloop.WithStop(p.done),
		acceptloop.WithFailed(func(error) { p.acceptErrors.Add(1) }))
	// Run's only error says the listener cannot accept at all; nothing
	// here can mend that, and Close still cleans up.
}

// serve forwards c to the target, unless the proxy is blocked.
func (p *Proxy) serve(c net.Conn) {
	if !p.track(c) {
		return
	}
	// Dial aside: a target that is down must not hold up accepting.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			p.drop(c)
			return
		}
		if !p.track(up) {
			p.drop(c)
			return
		}
		p.wg.Add(2)
		go p.pipe(up, c, false)
		go p.pipe(c, up, true)
	}()
}

// track adds c to the live connections, or closes it while blocked.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked || p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) drop(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

// pipe copies src to dst until either ends, then closes both. answer is
// the direction from the target back to the client.
func (p *Proxy) pipe(dst, src net.Conn, answer bool) {
	defer p.wg.Done()
	defer p.drop(dst, src) // ends the other direction too
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.silent.Load() {
			n = 0 // lost on the way
		}
		if n > 0 && answer && p.delay.Load() > 0 {
			if !p.hold(time.Now(), dst) {
				return
			}
			if p.silent.Load() {
				n = 0 // silenced while held: lost like the rest
			}
		}
		if n > 0 {
			if !answer && p.mark != nil && bytes.Contains(buf[:n], p.mark) {
				p.matched.Add(1)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or closed
		}
	}
}

// hold waits until the delay in force has passed since arrived, and
// reports false when dst was cut (Block) or the proxy closed meanwhile. A
// delay of hours is a hang: SetDelay, Block and Close must still end it.
func (p *Proxy) hold(arrived time.Time, dst net.Conn) bool {
	for {
		p.mu.Lock()
		_, live := p.conns[dst]
		changed, closed := p.changed, p.closed
		wait := time.Until(arrived.Add(time.Duration(p.delay.Load())))
		p.mu.Unlock()
		switch {
		case closed || !live:
			return false
		case wait <= 0:
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed:
		case <-p.done:
		}
		t.Stop()
	}
}
