package etcd

import (
	"context"
	"sync"

	"google.golang.org/grpc/connectivity"
)

// connMonitor watches the Registry's one etcd connection and tells every
// subscribed instancer when it is lost and when it is ready again after a
// loss: a loss so subscribers hear of it now, and a recovery because a
// watch the client resumed by itself may have crossed a restore or a
// switch to another cluster. One goroutine serves every instancer of the
// Registry; the Registry starts it and Close stops it.
type connMonitor struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

func startConnMonitor(client *lazyClient) *connMonitor {
	ctx, cancel := context.WithCancel(context.Background())
	m := &connMonitor{subs: map[chan struct{}]struct{}{}, cancel: cancel, done: make(chan struct{})}
	go m.run(ctx, client)
	return m
}

// subscribe returns a channel that receives (buffered, coalesced) a value
// on every loss and recovery; unsubscribe with the returned func.
func (m *connMonitor) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		delete(m.subs, ch)
		m.mu.Unlock()
	}
}

// stop ends the goroutine and waits for it. Idempotent.
func (m *connMonitor) stop() {
	m.cancel()
	<-m.done
}

func (m *connMonitor) signal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default: // one pending signal is as good as two
		}
	}
}

func (m *connMonitor) run(ctx context.Context, client *lazyClient) {
	defer close(m.done)
	// With credentials the client may not exist yet; instancers list
	// (and so cover anything before) once it does.
	cli, err := client.get(ctx)
	if err != nil {
		return // stopped, or the client will never exist
	}
	conn := cli.ActiveConnection()
	state := conn.GetState()
	wasReady, lost := state == connectivity.Ready, false
	for conn.WaitForStateChange(ctx, state) {
		state = conn.GetState()
		switch {
		case !lost && (wasReady && state != connectivity.Ready || state == connectivity.TransientFailure):
			// A failed connect is a loss even if READY was never seen:
			// GetState after a wake-up may have skipped it (a goroutine
			// starved on a loaded machine saw CONNECTING, then
			// TRANSIENT_FAILURE, and never signalled; the instancer then
			// watched a dead connection in silence).
			lost = true
			m.signal()
		case state == connectivity.Ready && lost:
			lost = false
			m.signal()
		case state == connectivity.TransientFailure && lost:
			// Still lost: a reconnect failed. Said again, because an
			// instancer that listed in the moment the loss was signalled
			// may have been answered by a member still shutting down; it
			// then cleared its error and watched a dead connection
			// (seen in a loaded make test). One signal per failed
			// reconnect, at gRPC's reconnect backoff (1 s doubling).
			m.signal()
		}
		if state == connectivity.Ready {
			wasReady = true
		}
	}
}
