package nginx

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/registry"
)

// An old worker kept busy by a long-lived client exits within the
// worker_shutdown_timeout (10 s) of a reload, instead of living as long
// as its client: under churn, one such worker per reload would pile up.
func TestStart_AnOldWorkerHeldByAStreamingClientExitsAfterTheShutdownTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := Start(ctx, ProcessConfig{Dir: t.TempDir(), Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	// A backend that streams a byte every 100 ms for up to a minute: the
	// stream outlives the test's bound unless nginx cuts it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		end := time.After(time.Minute)
		w.Header().Set("X-Accel-Buffering", "no") // each byte reaches the client now, not when nginx's buffer fills
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-end:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})}
	go hs.Serve(l) // owned by the test: Close below ends it
	defer hs.Close()
	inst := registry.Instance{ID: "s", Name: "user", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", l.Addr().(*net.TCPAddr).Port)}}
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	snap := func(insts ...registry.Instance) edge.Snapshot {
		return edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: insts}}}
	}
	if err := s.Apply(ctx, snap(inst)); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/user/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadByte(); err != nil {
		t.Fatalf("no first byte of the stream: %v", err)
	}
	go func() { // owned by the test: ends when the body closes (deferred) or nginx cuts it
		for {
			if _, err := br.ReadByte(); err != nil {
				return
			}
		}
	}()
	old := workers(p.Pid())
	if len(old) == 0 {
		t.Skip("no /proc children list: cannot watch the workers")
	}
	t0 := time.Now()
	if err := s.Apply(ctx, snap()); err != nil { // a change: reload
		t.Fatal(err)
	}
	t.Logf("reload took %s; old %v now %v", time.Since(t0), old, workers(p.Pid()))
	start := time.Now()
	for {
		stale := 0
		for w := range workers(p.Pid()) {
			if old[w] {
				stale++
			}
		}
		if stale == 0 {
			t.Logf("old worker gone %s after the reload", time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > 25*time.Second {
			t.Fatalf("an old worker still runs 25 s after the reload, held by the streaming client")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
