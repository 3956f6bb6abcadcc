package tcpproxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/acceptloop"
)

// echo serves lines back on a loopback port until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() { // ends when the cleanup closes ln
		defer wg.Done()
		// acceptloop: the fd-limit test leaves this echo, too, out of
		// descriptors, and Linux fails an accept with EMFILE even with
		// no connection waiting.
		_ = acceptloop.Run(ln, func(c net.Conn) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		})
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, line string) (string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Traffic goes through and marked requests are counted; Block cuts the
// live connection and refuses new ones until Unblock; Close is
// idempotent and leaves nothing listening.
func TestProxy_ForwardsCountsCutsAndHeals(t *testing.T) {
	p, err := New(echo(t), WithMark([]byte("GET /users/")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	c := dial(t, p)
	for _, line := range []string{"GET /users/1", "GET /orders/1", "GET /users/2"} {
		if got, err := roundTrip(c, line); err != nil || got != line {
			t.Fatalf("round trip %q: %q, %v", line, got, err)
		}
	}
	if n := p.Matched(); n != 2 {
		t.Fatalf("matched %d, want 2", n)
	}

	p.Block()
	if _, err := roundTrip(c, "after the cut"); err == nil {
		t.Fatal("a live connection survived Block")
	}
	if _, err := roundTrip(dial(t, p), "while blocked"); err == nil {
		t.Fatal("a new connection went through while blocked")
	}
	p.Unblock()
	if got, err := roundTrip(dial(t, p), "healed"); err != nil || got != "healed" {
		t.Fatalf("after Unblock: %q, %v", got, err)
	}

	p.Close()
	p.Close()
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after Close")
	}
}

// SetDelay holds every answer back by the delay: judged by the answer
// arriving no sooner than the delay, never by an upper bound.
func TestProxy_DelaysAnswers(t *testing.T) {
	p, err := New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetDelay(300 * time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(dial(t, p), "slow"); err != nil || got != "slow" {
		t.Fatalf("%q, %v", got, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("answer after %s, want at least the 300ms delay", took)
	}
}

// A target that is down closes the client's connection, and the proxy
// keeps accepting.
func TestProxy_TargetDownClosesTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 2 {
		if _, err := roundTrip(dial(t, p), "anyone?"); err == nil {
			t.Fatalf("got an answer from a target that is down: %v", err)
		}
	}
}
