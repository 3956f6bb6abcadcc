package transporttest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/internal/acceptloop"
	"github.com/warren-mesh/warren/internal/fdshort"
)

// A failed accept (EMFILE: the process out of descriptors for a moment)
// does not end Serve, which the App would take for a transport that
// stopped on its own: once descriptors are free again, the connection
// that waited and a new one are echoed, and Shutdown ends Serve with nil.
// Serve used to return the accept's error. Runs in a child process
// (fdshort).
func TestLineEcho_KeepsServingAfterRunningOutOfDescriptors(t *testing.T) {
	if fdshort.InParent(t) {
		return
	}
	var failed atomic.Int64
	s := NewLineEcho("127.0.0.1:0")
	s.loopOpts = []acceptloop.Option{acceptloop.WithFailed(func(error) { failed.Add(1) })}
	addr, err := s.Listen(transport.Host{Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }() // ends at the Shutdown or Close below
	defer s.Close()

	waiting, release := fdshort.Dial(t, addr.String(), failed.Load)
	release()
	if err := echoes(waiting, "waited"); err != nil {
		t.Fatalf("the connection that waited out the shortage: %v", err)
	}
	fresh, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial after the shortage: %v", err)
	}
	defer fresh.Close()
	if err := echoes(fresh, "fresh"); err != nil {
		t.Fatalf("a new connection after the shortage: %v", err)
	}

	waiting.Close() // Shutdown waits for clients to hang up
	fresh.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v after Shutdown, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running 10 s after Shutdown")
	}
}

// echoes sends line on c and checks that it comes back within 10 s.
func echoes(c net.Conn, line string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got = strings.TrimSpace(got); got != line {
		return fmt.Errorf("echoed %q, want %q", got, line)
	}
	return nil
}
