package zookeeper

import (
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/internal/zk"
)

// session follows the state of the Registry's one ZooKeeper connection,
// from the client library's event callback, and tells every subscriber
// (registrations, instancers) when something they must act on happened:
//
//   - a session was established (a new session ID: the old one expired,
//     its ephemeral znodes and watches are gone);
//   - the connection came back within the same session (watches were
//     re-set by the library, but a re-read costs little and proves it);
//   - the connection has been down for a whole session timeout, so the
//     session has most likely expired on the server.
//
// The timeout is the one the server granted (it clamps the one asked for
// to its min and max session timeouts), and "down" counts from the last
// packet the server sent, where its expiry clock starts, not from when
// the client noticed the silence: that takes the library's read deadline,
// two thirds of the timeout, and /readyz stayed green for seconds after
// the server had dropped the znode (report j47b).
type session struct {
	requested time.Duration
	logger    log.Logger

	mu        sync.Mutex
	timeout   time.Duration // granted, once a session is; requested before
	id        int64         // current session ID, 0 before the first
	connected bool          // a session is established on a live connection
	downSince time.Time     // when the connection was lost (zero while up)
	subs      map[chan struct{}]struct{}
	timer     *time.Timer
	stopped   bool
}

func newSession(timeout time.Duration, logger log.Logger) *session {
	return &session{requested: timeout, timeout: timeout, logger: logger, subs: map[chan struct{}]struct{}{}, downSince: time.Now()}
}

// event is the client library's callback; it must not block.
func (s *session) event(ev zk.Event, conn func() *zk.Conn) {
	if ev.Type != zk.EventSession {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	switch ev.State {
	case zk.StateHasSession:
		if c := conn(); c != nil {
			s.id = c.SessionID()
			s.grantedLocked(c.SessionTimeout())
		}
		s.connected = true
		s.downSince = time.Time{}
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		s.notifyLocked()
	case zk.StateDisconnected, zk.StateExpired, zk.StateAuthFailed:
		if s.connected {
			s.connected = false
			s.downSince = time.Now()
			if c := conn(); c != nil {
				if last := c.LastReceived(); !last.IsZero() && last.Before(s.downSince) {
					s.downSince = last
				}
			}
			if s.timer == nil {
				s.timer = time.AfterFunc(max(s.timeout-time.Since(s.downSince), 0), s.timedOut)
			}
		}
		if ev.State == zk.StateExpired {
			s.id = 0
		}
		s.notifyLocked()
	}
}

// setID records the session ID and timeout once Connect returned the
// Conn (the first StateHasSession may come before the Registry holds it).
func (s *session) setID(id int64, granted time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected && id != 0 {
		s.id = id
		s.grantedLocked(granted)
	}
}

// grantedLocked takes the timeout the server granted, saying so when it is
// not the one asked for (ZooKeeper clamps it to its minSessionTimeout and
// maxSessionTimeout, 2 and 20 ticks by default).
func (s *session) grantedLocked(granted time.Duration) {
	if granted <= 0 || granted == s.timeout {
		return
	}
	if granted != s.requested {
		level.Warn(s.logger).Log("msg", "ZooKeeper granted another session timeout than the one asked for; using it",
			"requested", s.requested, "granted", granted)
	}
	s.timeout = granted
}

// sessionTimeout returns the session timeout in force.
func (s *session) sessionTimeout() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timeout
}

func (s *session) timedOut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	s.notifyLocked()
}

func (s *session) notifyLocked() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default: // a signal is pending already; the subscriber re-reads the state
		}
	}
}

// state returns the session ID, whether it is connected, and how long the
// connection has been down (0 while up).
func (s *session) state() (id int64, connected bool, down time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected {
		down = time.Since(s.downSince)
	}
	return s.id, s.connected, down
}

// lost reports whether the connection has been down for a whole session
// timeout: the session is then presumed expired on the server, and with
// it every ephemeral znode of this process.
func (s *session) lost() bool {
	_, connected, down := s.state()
	return !connected && down >= s.sessionTimeout()
}

// subscribe returns a channel that receives a signal (coalesced) whenever
// the session changes, and a function that ends the subscription.
func (s *session) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *session) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}
