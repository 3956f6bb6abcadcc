package tcpproxy

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// heldPipes counts the proxy's pipe goroutines that wait in a select — an
// answer held by SetDelay — and all its pipe goroutines.
func heldPipes() (held, all int) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "tcpproxy.(*Proxy).pipe(") {
			continue
		}
		all++
		if strings.Contains(strings.SplitN(g, "\n", 2)[0], "[select") {
			held++
		}
	}
	return held, all
}

// waitPipes polls heldPipes until ok says yes, for at most 10 s.
func waitPipes(t *testing.T, what string, ok func(held, all int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, all := heldPipes()
		if ok(held, all) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d pipes held, %d running after 10s", what, held, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdOne sends a line through p while it delays answers by an hour and
// waits until the echoed answer is held in the proxy.
func holdOne(t *testing.T, p *Proxy) (net.Conn, chan string) {
	t.Helper()
	p.SetDelay(time.Hour)
	c := dial(t, p)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "held\n"); err != nil {
		t.Fatal(err)
	}
	waitPipes(t, "the answer reaching the hold", func(held, _ int) bool { return held == 1 })
	got := make(chan string, 1)
	go func() { // ends by the connection's deadline at the latest
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			line = "error: " + err.Error()
		}
		got <- strings.TrimSuffix(line, "\n")
	}()
	return c, got
}

// A stall that ends (SetDelay(0), as the fault tests' "unhang") or is
// shortened releases the answers it holds at once: they used to wait out
// the delay in force when they arrived — an hour — so a connection hung
// during the stall stayed hung after it.
func TestProxy_EndOfAStallReleasesTheAnswersItHolds(t *testing.T) {
	for _, tc := range []struct {
		name string
		next time.Duration
	}{
		{"delay off", 0},
		{"delay shortened", 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(echo(t))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			_, got := holdOne(t, p)
			p.SetDelay(tc.next)
			select {
			case line := <-got:
				if line != "held" {
					t.Fatalf("answer %q, want %q", line, "held")
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the held answer was not released 15s after the delay ended")
			}
		})
	}
}

// Block cuts the connections whose answers a delay holds, and their pipe
// goroutines end: they used to stay until the delay ran out or the proxy
// closed, one more for every stalled connection of every cut.
func TestProxy_BlockEndsConnectionsHeldByADelay(t *testing.T) {
	p, err := New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, got := holdOne(t, p)
	p.Block()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "error: ") {
			t.Fatalf("got %q through a cut", line)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the held connection was not cut")
	}
	waitPipes(t, "after Block", func(_, all int) bool { return all == 0 })
	// The proxy works again once unblocked, the delay off.
	p.Unblock()
	p.SetDelay(0)
	if line, err := roundTrip(dial(t, p), "again"); err != nil || line != "again" {
		t.Fatalf("after Unblock: %q, %v", line, err)
	}
}

// An answer held by a stall that ends while the proxy is silent is lost
// like every other chunk of the silence: it used to be let through, a
// chunk of the stall crossing the partition that followed it.
func TestProxy_AnswerReleasedDuringASilenceIsLost(t *testing.T) {
	p, err := New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, got := holdOne(t, p)
	p.SetSilent(true)
	p.SetDelay(0)
	// The hold ends (its pipe reads again) before the verdict is judged.
	waitPipes(t, "the hold ending", func(held, _ int) bool { return held == 0 })
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if line := <-got; !strings.HasPrefix(line, "error: ") {
		t.Fatalf("got %q through a silent proxy", line)
	}
}
