package warrencli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge/nginx"
)

// warren nginx without --services, started while the registry is down (a
// node rebooted during the outage), says within seconds that it waits for
// the registry to list the services and how to start without it, and
// follows the registry once it answers. It waited in silence: no line at
// all for as long as etcd was down.
func TestNginx_StartedWithoutServicesWhileTheRegistryIsDownSaysSoAndFollowsItOnceBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, reg := stoppableEtcd(t, ctx, false)
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: t.TempDir(), Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	dir := filepath.Dir(p.Upstreams())
	r := start(ctx, "nginx", "--registry", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints(), ","),
		"--out", p.Upstreams(), "--nginx-prefix", dir, "--nginx-conf", filepath.Join(dir, "nginx.conf"), "--debounce", "20ms")
	waitLog(t, r, "--services", 30*time.Second)
	select {
	case code := <-r.done:
		t.Fatalf("exited %d while the registry was down; log:\n%s", code, r.stderr)
	default:
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, httpBackend(t, "user-a")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if now, _ := os.ReadFile(p.Upstreams()); strings.Contains(string(now), "# user-a") {
			break
		}
		select {
		case code := <-r.done:
			t.Fatalf("exited %d after the registry came back; log:\n%s", code, r.stderr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("user-a not in the upstreams within 90 s of etcd answering; log:\n%s", r.stderr)
		}
	}
	answers(t, p.URL()+"/user/", "user-a", 30*time.Second, r.stderr.String)
	cancel()
	r.exit(t)
}
