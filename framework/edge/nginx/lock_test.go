package nginx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func healthz(url string) (int, string) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url + "/_edge/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// A second Start in a directory an edge runs in is refused, and leaves
// the first one's files and nginx alone.
func TestStart_RefusesADirAnotherEdgeHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := Start(ctx, ProcessConfig{Dir: dir, Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	before, _ := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	second, err := Start(ctx, ProcessConfig{Dir: dir, Services: []string{"user", "order"}})
	if err == nil {
		second.Stop()
	}
	if !errors.Is(err, ErrDirInUse) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second Start in %s: %v; want ErrDirInUse naming the holder", dir, err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "nginx.conf")); string(after) != string(before) {
		t.Fatal("the refused Start rewrote nginx.conf")
	}
	if code, body := healthz(p.URL()); code != http.StatusOK || !strings.HasPrefix(body, "ok") {
		t.Fatalf("the first nginx after the refused Start: %d %q", code, body)
	}
	p.Stop()
	p2, err := Start(ctx, ProcessConfig{Dir: dir, Services: []string{"user"}})
	if err != nil {
		t.Fatalf("Start once the first edge stopped: %v", err)
	}
	p2.Stop()
}

// A directory that takes no new file is found by NewSyncer, at start.
func TestNewSyncer_RefusesADirectoryItCannotWrite(t *testing.T) {
	r, _ := NewRenderer()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if os.Geteuid() == 0 {
		dir = "/proc/self" // root writes anywhere a mode allows nothing
	}
	_, err := NewSyncer(filepath.Join(dir, "upstreams.conf"), r, Command{})
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("NewSyncer in %s: %v; want a not-writable error", dir, err)
	}
}
