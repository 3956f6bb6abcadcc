package bootstrap

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// docs/observability.md (Tracing): the OTLP exporter retries a collector
// that does not answer for up to a minute; at exit the service waits 5 s
// for the last spans and then logs msg="trace export on exit" with
// "spans dropped on exit". The wait is the deferred shutdown's timeout in
// run; one of a minute (the exporter's whole retry) passed every test.
// Bounds are generous: at least 4 s from the cancel to Run's return (no
// wait at all fails it), well under 30 s (a minute's wait fails it).
func TestRun_AtExitTheServiceWaitsAboutFiveSecondsForTheLastSpans(t *testing.T) {
	// A collector that accepts connections and never says a word.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for i := 0; i < 1000; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()

	port := freePort(t)
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s",
		"--otlp-endpoint", "http://" + ln.Addr().String()}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Run(ctx, "svc", "1", args, out, hello, toys) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "phase=run") {
		if time.Now().After(deadline) {
			t.Fatalf("not running\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/anything") // a span to export
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	cancel()
	began := time.Now()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return within 30s of the cancel: the wait for the spans is not about 5s\n%s", out)
	}
	took := time.Since(began)
	if took < 4*time.Second {
		t.Errorf("Run returned %s after the cancel: it did not wait about 5s for the spans\n%s", took, out)
	}
	if !strings.Contains(out.String(), `msg="trace export on exit"`) || !strings.Contains(out.String(), "spans dropped on exit") {
		t.Errorf("no trace export on exit line\n%s", out)
	}
	t.Logf("returned %s after the cancel", took)
}
