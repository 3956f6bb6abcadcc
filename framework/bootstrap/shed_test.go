package bootstrap

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/shed"
)

// --shed-waiting reaches the HTTP server: the shedder bootstrap gives the
// server has the waiting signal on, with the target per CPU the flag says,
// and the server reports its connections to it (the count the signal
// reads), so a keep-alive connection between requests is seen at the next
// reading. Without the flag the signal is off.
func TestRun_ShedWaitingFlagTurnsTheWaitingSignalOnInTheServer(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		target int64
	}{
		{nil, 0},
		{[]string{"--shed-waiting", "16"}, int64(16 * runtime.GOMAXPROCS(0))},
	} {
		port := freePort(t)
		args := append([]string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s"}, tc.args...)
		lims := make(chan *shed.Limiter, 1)
		build := func(ctx context.Context, d *Deps) (Transports, error) {
			lims <- d.Shedder
			return hello(ctx, d)
		}
		start(t, args, build)
		lim := <-lims
		if lim == nil {
			t.Fatalf("%v: no shedder", tc.args)
		}
		if got := lim.Stats().WaitingTarget; got != tc.target {
			t.Errorf("%v: waiting target %d, want %d", tc.args, got, tc.target)
		}
		if tc.target == 0 {
			continue
		}
		get := func(tr *http.Transport) {
			t.Helper()
			resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://127.0.0.1:" + port + "/hello")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body) // read to the end: the connection is kept
			resp.Body.Close()
		}
		idle, other := &http.Transport{}, &http.Transport{}
		defer idle.CloseIdleConnections()
		defer other.CloseIdleConnections()
		get(idle) // its connection now waits between requests
		deadline := time.Now().Add(20 * time.Second)
		for lim.Stats().Conns < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("%v: the server's idle connection never counted: %+v", tc.args, lim.Stats())
			}
			time.Sleep(20 * time.Millisecond) // past the reading interval
			get(other)                        // a request takes the reading
		}
	}
}
