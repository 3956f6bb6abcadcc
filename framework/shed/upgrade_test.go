package shed

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// An upgraded connection (a websocket) is no request in flight once its
// handler has taken the connection over: it lives as long as its peer
// wants, and counting it held a slot of the limit for that long. Before,
// four websockets on an instance with a limit of 4 had it refuse every
// other request with 503 overloaded while it did nothing, and each
// websocket's lifetime became a latency sample when it closed.
func TestMiddleware_AnUpgradedConnectionLeavesTheLimit(t *testing.T) {
	l := mustNew(t, WithLimits(4, 4, 4))
	mw, err := Middleware(l)
	if err != nil {
		t.Fatal(err)
	}
	var handlers sync.WaitGroup
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			w.WriteHeader(http.StatusOK)
			return
		}
		handlers.Add(1)
		defer handlers.Done()
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		_, _ = io.Copy(io.Discard, rw) // the websocket's life: until the peer closes
	})))
	defer srv.Close()

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 4 {
		c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(status, " 101 ") {
			t.Fatalf("upgrade %d: %q, %v", i, status, err)
		}
	}
	if n := l.Stats().InFlight; n != 0 {
		t.Errorf("in flight with 4 upgraded connections open = %d, want 0", n)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 8 {
		resp, err := client.Get(srv.URL + "/users/1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d beside 4 upgraded connections (limit 4): %d, want 200", i, resp.StatusCode)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("upgraded handlers did not return after their peers closed")
	}
	if st := l.Stats(); st.InFlight != 0 || st.Admitted != 12 {
		t.Fatalf("after the upgraded connections closed: %+v, want none in flight (released once each) and 12 admitted", st)
	}
}
