package faults

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards TCP connections from its own loopback port to a target.
// It can delay every answer (a slow instance, as its clients see it) and
// cut every connection (a network partition between one client and a
// server), and counts the requests that contain a marker.
type Proxy struct {
	ln     net.Listener
	target string
	mark   []byte

	delay   atomic.Int64 // nanoseconds added before each chunk of the answer
	matched atomic.Int64

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	blocked bool
	closed  bool
	wg      sync.WaitGroup
}

// NewProxy listens on a free 127.0.0.1 port and forwards to target. Chunks
// sent to the target that contain mark (say "GET /users/") are counted;
// nil counts nothing.
func NewProxy(target string, mark []byte) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, mark: mark, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay adds d before each chunk the target sends back. HTTP/1.1
// answers one request at a time per connection, so every answer is d late.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Matched is how many chunks towards the target contained the mark.
func (p *Proxy) Matched() int64 { return p.matched.Load() }

// Block cuts every connection and refuses new ones (accepted and closed
// at once) until Unblock.
func (p *Proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		c.Close()
	}
}

// Unblock lets connections through again.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

// Close stops the proxy and closes every connection; it waits for its
// goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		refuse := p.blocked || p.closed
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			continue
		}
		p.wg.Add(2)
		go p.pipe(up, c, false)
		go p.pipe(c, up, true)
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked || p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst until either ends, then closes both.
func (p *Proxy) pipe(dst, src net.Conn, answer bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if answer {
				if d := time.Duration(p.delay.Load()); d > 0 {
					time.Sleep(d)
				}
			} else if p.mark != nil && bytes.Contains(buf[:n], p.mark) {
				p.matched.Add(1)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or closed: the deferred close ends the other direction too
		}
	}
}
