package transport

import (
	"errors"
	"io"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// DefaultHandshakeLogEvery is how often a HandshakeLog writes a line while
// handshakes keep failing.
const DefaultHandshakeLogEvery = 10 * time.Second

// HandshakeLog reports the failed TLS handshakes of a process's
// transports. Anyone who can connect can fail a handshake, as often as
// they like, so a line per failure would let any peer flood the log: the
// first failure is logged at once, the ones after it within the interval
// are counted, and one line at the end of the interval says how many
// there were and the last one's reason. Every failure is counted per
// transport (Failures; metrics.NewHandshakes exports it). One HandshakeLog
// serves every transport of a process (Host.Handshakes), so the limit is
// the process's. Safe for concurrent use.
type HandshakeLog struct {
	logger log.Logger
	every  time.Duration

	mu         sync.Mutex
	lastLine   time.Time // when a line was last written
	suppressed int       // failures since then not logged one by one
	last       []any     // the last suppressed failure's key/values
	timer      *time.Timer
	counts     map[string]uint64
}

// NewHandshakeLog returns a log writing to logger at most one line per
// every (DefaultHandshakeLogEvery when every ≤ 0) while failures go on.
func NewHandshakeLog(logger log.Logger, every time.Duration) *HandshakeLog {
	if every <= 0 {
		every = DefaultHandshakeLogEvery
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	return &HandshakeLog{logger: logger, every: every, counts: map[string]uint64{}}
}

// Failed records a failed handshake on transport ("http", "grpc") from
// remote. A peer that connected and left without a word (io.EOF: a TCP
// probe, a port scan) is neither logged nor counted.
func (h *HandshakeLog) Failed(transport string, remote net.Addr, err error) {
	if errors.Is(err, io.EOF) {
		return
	}
	kv := []any{"transport", transport, "remote", addrString(remote), "err", err}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[transport]++
	if h.lastLine.IsZero() || now.Sub(h.lastLine) >= h.every {
		h.flushLocked() // an interval's summary its timer has not written yet goes first
		h.lastLine = now
		level.Info(h.logger).Log(append([]any{"msg", "TLS handshake failed"}, kv...)...)
		return
	}
	h.suppressed++
	h.last = kv
	if h.timer == nil { // the interval's summary line, at its end
		h.timer = time.AfterFunc(h.every-now.Sub(h.lastLine), h.Flush)
	}
}

// Flush writes the summary of the failures not yet logged, if any, now:
// at the end of each interval, and when the process stops (so the last
// interval's count is not lost).
func (h *HandshakeLog) Flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushLocked()
}

func (h *HandshakeLog) flushLocked() {
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	if h.suppressed == 0 {
		return
	}
	kv := []any{"msg", "TLS handshakes failed, not logged one by one", "suppressed", h.suppressed,
		"since", time.Since(h.lastLine).Round(time.Millisecond), "last_transport", h.last[1], "last_remote", h.last[3], "last_err", h.last[5]}
	level.Info(h.logger).Log(kv...)
	h.lastLine, h.suppressed, h.last = time.Now(), 0, nil
}

// Failures returns how many handshakes failed so far, per transport.
func (h *HandshakeLog) Failures() map[string]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.counts)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
