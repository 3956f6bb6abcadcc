package freeport

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Held is a set of ports kept from other processes while the server that
// owns them is down (stopped or killed by a test, to be started again on
// the same ports). A port freed for the whole outage could be picked and
// bound by another test process meanwhile, and the restart would fail with
// "address already in use"; held, it is exposed only between Release and
// the server's bind.
//
// A held port refuses connections, as a stopped server's does, so clients
// see the outage they would see without the hold: a connection that is
// accepted and then reset instead made gRPC clients reconnect several
// times more slowly (200 etcd clients back after a median 28.6 s instead
// of 6.7 s, under the same load). See holdPort for how.
type Held struct {
	ports []*heldPort
	once  sync.Once
}

// Hold holds each of addrs ("127.0.0.1:port"). A port its server let go of
// a moment ago is retried for up to two seconds; if one cannot be held,
// none is, and the error says which.
func Hold(addrs ...string) (*Held, error) {
	h := &Held{}
	for _, addr := range addrs {
		p, err := holdRetry(addr)
		if err != nil {
			h.Release()
			return nil, err
		}
		h.ports = append(h.ports, p)
	}
	return h, nil
}

// Release lets go of every port, returning once none is bound. It is
// idempotent, and does nothing on a nil Held.
func (h *Held) Release() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		for _, p := range h.ports {
			p.release()
		}
	})
}

func holdRetry(addr string) (*heldPort, error) {
	p, err := retryBind(addr, holdPort)
	if err != nil {
		return nil, fmt.Errorf("freeport: hold %s: %w", addr, err)
	}
	return p, nil
}

// Listen listens on addr, a port its owner (a hold, or the last run of a
// server) let go of a moment ago: it is retried for up to two seconds, as
// Hold retries, until the kernel has let go of it.
func Listen(addr string) (net.Listener, error) {
	ln, err := retryBind(addr, func(a string) (net.Listener, error) { return net.Listen("tcp", a) })
	if err != nil {
		return nil, fmt.Errorf("freeport: listen %s: %w", addr, err)
	}
	return ln, nil
}

// retryBind calls bind on addr until it succeeds, 20 times 100 ms apart
// at most, and returns the last error.
func retryBind[T any](addr string, bind func(string) (T, error)) (T, error) {
	var v T
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if v, err = bind(addr); err == nil {
			return v, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return v, err
}

// Addr is port on 127.0.0.1, as Hold, Claim and the servers take it.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// portOf is addr's port; false when addr has none.
func portOf(addr string) (int, bool) {
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	port, err := strconv.Atoi(ps)
	return port, err == nil
}

// Keeper holds one restartable server's ports between its runs: Hold when
// the server stops, Release just before it starts again, Close when it is
// gone for good. It also claims every port it held, until Close (see
// claim): Pick skips them, in any process, so the server's start after
// Release is not raced by another picker. Its zero value is ready; it is
// safe for concurrent use.
type Keeper struct {
	mu     sync.Mutex
	held   *Held
	claims map[int]*claim
	closed bool
}

// Hold holds addrs (instead of what it held) until Release or Close, and
// claims their ports until Close. Best effort: it returns Hold's error and
// holds nothing then, leaving a port exposed as it would be without a
// Keeper; after Close it does nothing.
func (k *Keeper) Hold(addrs ...string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.held.Release() // the same ports, maybe
	var err error
	k.held, err = Hold(addrs...)
	k.claimLocked(addrs)
	return err
}

// Claim claims addrs' ports until Close without holding them: Pick passes
// over them, but the ports are left as they are (for a server whose ports
// must not be bound by anyone else while it is down, Hold instead). After
// Close it does nothing. Best effort, as Hold is.
func (k *Keeper) Claim(addrs ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.closed {
		k.claimLocked(addrs)
	}
}

func (k *Keeper) claimLocked(addrs []string) {
	for _, addr := range addrs {
		port, ok := portOf(addr)
		if !ok || k.claims[port] != nil {
			continue
		}
		if c := claimPort(port); c != nil {
			if k.claims == nil {
				k.claims = map[int]*claim{}
			}
			k.claims[port] = c
		}
	}
}

// Release lets go of the held ports, if any; they stay claimed.
func (k *Keeper) Release() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held.Release()
	k.held = nil
}

// Close releases the ports, drops the claims and makes later Holds do
// nothing. It is idempotent.
func (k *Keeper) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	k.held.Release()
	k.held = nil
	for _, c := range k.claims {
		c.drop()
	}
	k.claims = nil
}
