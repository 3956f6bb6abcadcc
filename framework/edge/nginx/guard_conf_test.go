package nginx_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge/nginx"
)

// The retry settings docs/edge.md ("No errors at the client while
// instances come and go") prints for the nginx warren runs, with the
// default ProcessConfig: the connect timeout (2 s: a dead instance's
// SYN that gets no answer costs 2 s, not nginx's 60 s) and the others.
// The behaviour tests catch a change of the read timeout, the tries and
// the retried conditions, but not of the connect timeout; this reads the
// file the real nginx ran with.
func TestStart_DefaultConfHasTheDocumentedRetrySettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: dir, Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	conf, err := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"proxy_next_upstream error timeout http_502 http_503;\n",
		"proxy_next_upstream_tries 3;\n",
		"proxy_connect_timeout 2s;\n",
		"proxy_read_timeout 3000ms;\n",
		"proxy_send_timeout 3000ms;\n",
		"worker_shutdown_timeout 10s;\n",
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("nginx.conf lacks the documented %q:\n%s", want, conf)
		}
	}
}
