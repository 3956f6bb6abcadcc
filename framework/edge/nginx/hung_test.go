package nginx_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/silent"
)

// hung is an instance that accepts connections and never answers (a
// SIGSTOPped process: the kernel still completes the handshake).
func hung(t *testing.T) registry.Instance {
	t.Helper()
	l, err := net.ResolveTCPAddr("tcp", silent.Listen(t))
	if err != nil {
		t.Fatal(err)
	}
	return registry.Instance{ID: "hung", Name: "user", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", l.Port)}}
}

// A hung instance costs a GET seconds, not the 30 s of a long read
// timeout: nginx gives up on it after ReadTimeout, answers from the other
// instance, and skips the hung one afterwards (max_fails).
func TestStart_AHungInstanceIsSkippedWithinTheReadTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: t.TempDir(), Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	r, _ := nginx.NewRenderer()
	s, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	snap := edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: []registry.Instance{backend(t, "a"), hung(t)}}}}
	if err := s.Apply(ctx, snap); err != nil {
		t.Fatal(err)
	}
	// Round robin over two: among four GETs at least one goes to the hung
	// instance first. Each must be answered by "a" well within 15 s (the
	// 3 s default, on a loaded machine), never after the 30 s it took.
	c := &http.Client{Timeout: 15 * time.Second}
	for i := range 4 {
		t0 := time.Now()
		resp, err := c.Get(p.URL() + "/user/")
		if err != nil {
			t.Fatalf("GET %d: %v after %s", i, err, time.Since(t0).Round(time.Millisecond))
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "a" {
			t.Fatalf("GET %d: %d %q after %s; want a", i, resp.StatusCode, b, time.Since(t0))
		}
		t.Logf("GET %d answered in %s", i, time.Since(t0).Round(time.Millisecond))
	}
}

// ReadTimeout and RetryNonIdempotent reach nginx.conf.
func TestStart_ReadTimeoutAndNonIdempotentRetriesAreSettable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: dir, Services: []string{"user"}, ReadTimeout: 45 * time.Second, RetryNonIdempotent: true})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	conf, _ := os.ReadFile(dir + "/nginx.conf")
	for _, want := range []string{"proxy_read_timeout 45000ms;", "proxy_send_timeout 45000ms;", "http_503 non_idempotent;"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, conf)
		}
	}
	if _, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: t.TempDir(), Services: []string{"user"}, ReadTimeout: -time.Second}); err == nil {
		t.Error("a negative read timeout was accepted")
	}
}
