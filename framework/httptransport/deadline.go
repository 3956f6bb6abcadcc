package httptransport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Body read limits: a request body must keep arriving and must be complete
// within a bound, so a client that stops sending (a chunked body that
// never ends: 3000 of them held 97 MB, forever) costs one timeout, not a
// connection, a goroutine and its buffers for good — and never holds the
// drain at shutdown.
const (
	// DefaultBodyTimeout bounds reading a whole request body.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultBodyIdleTimeout bounds each wait for more body bytes.
	DefaultBodyIdleTimeout = 10 * time.Second
)

// ErrBodyTimeout is the (wrapped) error of a body read that hit a body
// limit; it answers 408, with code CodeBodyTimeout when Warren's decoder
// was reading the body (DecodeJSON, DecodeBody: before the method ran)
// and CodeBodyTimeoutInHandler when anything else was (a method or
// handler that reads the body itself, and may have acted on part of it).
var ErrBodyTimeout = errors.New("request body not received in time")

// CodeBodyTimeout is the code of the 408 that answers ErrBodyTimeout met
// by Warren's decoder. A Warren client takes that answer (and only with
// this code: a proxy's 408 says nothing of the handler) as "no method
// ran": the decoder reads the whole body before the method runs.
const CodeBodyTimeout = "body_timeout"

// CodeBodyTimeoutInHandler is the code of the 408 that answers
// ErrBodyTimeout met outside Warren's decoder: the method (or a handler
// of the service's own) was reading the body and may have acted on what
// it read, so a client retries it only as it retries a timeout.
const CodeBodyTimeoutInHandler = "body_timeout_in_handler"

// bodyNotDecoded marks ErrBodyTimeout met by Warren's decoder (decodeBody):
// the method never got the request.
type bodyNotDecoded struct{ err error }

func (e bodyNotDecoded) Error() string { return e.err.Error() }
func (e bodyNotDecoded) Unwrap() error { return e.err }

// BodyTimeouts bounds reading each request body: total from the first
// read, idle for each wait for more bytes. It sets the connection's read
// deadline (http.ResponseController) before each read; a read that misses
// it fails with ErrBodyTimeout. A zero value turns that bound off.
func BodyTimeouts(total, idle time.Duration) Middleware {
	return func(next http.Handler) http.Handler {
		if total <= 0 && idle <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			b := &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w), total: total, idle: idle}
			r.Body = b
			next.ServeHTTP(w, r)
			if b.eof {
				// The body is all in and the connection may serve another
				// request: lift the body's deadline.
				if b.set {
					_ = b.rc.SetReadDeadline(time.Time{})
				}
				return
			}
			// A body not read to the end: net/http discards the rest after
			// the handler, which must not wait on a client that stopped
			// sending either. Bytes already here are still read in time;
			// otherwise the connection is closed. With the idle limit off
			// the second still applies: a deadline of now would close it
			// every time.
			wait := time.Second
			if b.idle > 0 {
				wait = min(b.idle, wait)
			}
			_ = b.rc.SetReadDeadline(time.Now().Add(wait))
		})
	}
}

type deadlineBody struct {
	io.ReadCloser
	rc          *http.ResponseController
	total, idle time.Duration
	end         time.Time // zero until the first read
	set, eof    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.eof {
		// The body is all in and net/http reads the connection in the
		// background for the client's hang-up: a deadline armed now would
		// end that read and cancel the handler's context as it passed.
		return b.ReadCloser.Read(p)
	}
	now := time.Now()
	if b.end.IsZero() && b.total > 0 {
		b.end = now.Add(b.total)
	}
	d := b.end
	if b.idle > 0 && (d.IsZero() || now.Add(b.idle).Before(d)) {
		d = now.Add(b.idle)
	}
	if err := b.rc.SetReadDeadline(d); err == nil {
		b.set = true
	}
	n, err := b.ReadCloser.Read(p)
	b.eof = b.eof || errors.Is(err, io.EOF)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("%w (limits: %s in all, %s between reads): %w", ErrBodyTimeout, b.total, b.idle, err)
	}
	return n, err
}
