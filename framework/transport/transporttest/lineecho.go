// Package transporttest has a minimal second transport for tests of code
// that runs several transports (the App's phase order): a line-echo TCP
// server. It is test infrastructure, not a transport to deploy.
package transporttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/internal/acceptloop"
)

// nonceRequest is the line a probe sends; the server answers with the nonce.
const nonceRequest = "warren-selfcheck"

// LineEcho answers every line with the same line, and the self-check line
// with the process's nonce. Its scheme is "echo".
type LineEcho struct {
	addr string

	mu      sync.Mutex
	ln      net.Listener
	nonce   string
	conns   map[net.Conn]struct{}
	closed  bool
	serving sync.WaitGroup // one per connection handler
	stopped chan struct{}  // closed by Shutdown and Close
	once    sync.Once
	// loopOpts are added to the accept loop's options (the tests count
	// failed accepts with them).
	loopOpts []acceptloop.Option
}

var _ transport.Server = (*LineEcho)(nil)

// NewLineEcho returns a server that will listen on addr ("127.0.0.1:0").
func NewLineEcho(addr string) *LineEcho {
	return &LineEcho{addr: addr, conns: map[net.Conn]struct{}{}, stopped: make(chan struct{})}
}

// Scheme is "echo".
func (s *LineEcho) Scheme() string { return "echo" }

// Listen binds the address.
func (s *LineEcho) Listen(h transport.Host) (net.Addr, error) {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("echo: listen on %s: %w", s.addr, err)
	}
	s.mu.Lock()
	s.ln, s.nonce = ln, h.Nonce
	s.mu.Unlock()
	return ln.Addr(), nil
}

// Serve accepts connections until Shutdown or Close, and returns nil
// then. A failed accept (the process out of descriptors for a moment) is
// waited out, as net/http's and grpc-go's Serve do, so the App does not
// stop the service for it; an accept that says the listener cannot accept
// at all is returned (wrapping acceptloop.ErrBroken): the transport
// stopped on its own, which is what Serve's error is for.
func (s *LineEcho) Serve() error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return errors.New("echo: Serve before Listen")
	}
	opts := append([]acceptloop.Option{acceptloop.WithStop(s.stopped)}, s.loopOpts...)
	if err := acceptloop.Run(ln, s.accepted, opts...); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	return nil
}

// accepted serves c, unless Shutdown or Close came first.
func (s *LineEcho) accepted(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.serving.Add(1)
	go s.handle(c) // owned by s: ends when c closes; Shutdown/Close wait for it
}

func (s *LineEcho) handle(c net.Conn) {
	defer s.serving.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if line == nonceRequest {
			s.mu.Lock()
			line = s.nonce
			s.mu.Unlock()
		}
		if _, err := fmt.Fprintln(c, line); err != nil {
			return
		}
	}
}

// Probe dials endpoint and checks that the self-check line comes back as
// the nonce.
func (s *LineEcho) Probe(ctx context.Context, endpoint string) error {
	hp, ok := strings.CutPrefix(endpoint, "echo://")
	if !ok {
		return fmt.Errorf("echo: endpoint %q is not echo://", endpoint)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", hp)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	if _, err := fmt.Fprintln(c, nonceRequest); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	s.mu.Lock()
	want := s.nonce
	s.mu.Unlock()
	if strings.TrimSpace(got) != want {
		return fmt.Errorf("echo: %s was answered by another process", endpoint)
	}
	return nil
}

// Shutdown stops accepting and waits until every client has hung up, or
// ctx ends (then it closes them and returns ErrDrainTimeout).
func (s *LineEcho) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	done := make(chan struct{})
	go func() { s.serving.Wait(); close(done) }() // ends when the handlers do, which the close below forces
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		n := s.closeConns()
		<-done
		return fmt.Errorf("%w: %d echo connection(s) open: %w", transport.ErrDrainTimeout, n, context.Cause(ctx))
	}
}

// Close stops at once; idempotent.
func (s *LineEcho) Close() error {
	s.stopAccepting()
	s.closeConns()
	s.serving.Wait()
	return nil
}

func (s *LineEcho) stopAccepting() {
	s.once.Do(func() {
		close(s.stopped)
		s.mu.Lock()
		s.closed = true
		ln := s.ln
		s.mu.Unlock()
		if ln != nil {
			ln.Close()
		}
	})
}

func (s *LineEcho) closeConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return len(s.conns)
}
