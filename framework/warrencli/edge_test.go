package warrencli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

func TestNginx_RefusesBadCommandLines(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"nginx", "--services", "user"},                                                     // neither --out nor --listen
		{"nginx", "--services", "user", "--out", "x", "--listen", "127.0.0.1:0"},            // both
		{"nginx", "--services", "user", "--listen", "127.0.0.1:0", "--balance", "nope"},     // bad method
		{"nginx", "--services", "User!", "--listen", "127.0.0.1:0"},                         // bad name
		{"nginx", "--services", "user", "--listen", "127.0.0.1:0", "--registry", "zk9"},     // unknown backend
		{"nginx", "--services", "user", "--listen", "127.0.0.1:0", "--log-level", "chatty"}, // bad level
		{"nginx", "--services", "user", "--listen", "127.0.0.1:0", "--read-timeout", "0s"},  // no read timeout
	} {
		errOut.Reset()
		if code := run(context.Background(), args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, %q; want exit 2 with a message", args, code, errOut.String())
		}
	}
}

// warren nginx --listen runs nginx and follows an etcd registry.
func TestNginx_ListenRunsNginxThatFollowsEtcd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	endpoints, reg := etcdForTest(t, ctx)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from user-1 "+r.URL.Path) })}
	go hs.Serve(l) // owned by the test: Close below
	defer hs.Close()

	dir := t.TempDir()
	cmd := start(ctx, "nginx", "--registry", "etcd", "--etcd-endpoints", endpoints,
		"--services", "user", "--listen", "127.0.0.1:0", "--dir", dir, "--debounce", "50ms", "--read-timeout", "5s")
	url := strings.TrimSuffix(cmd.word(t, 3), ":")
	// --read-timeout reaches nginx.conf; the start says what it began with.
	if conf, _ := os.ReadFile(filepath.Join(dir, "nginx.conf")); !strings.Contains(string(conf), "proxy_read_timeout 5000ms;") {
		t.Errorf("--read-timeout 5s not in nginx.conf:\n%s", conf)
	}
	if !strings.Contains(cmd.stderr.String(), "no upstreams file from a previous run") {
		t.Errorf("no start-file line in the log:\n%s", cmd.stderr)
	}
	inst := registry.Instance{ID: "user-1", Name: "user", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", l.Addr().(*net.TCPAddr).Port)}}
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := c.Get(url + "/user/users/u-1"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == "from user-1 /users/u-1" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not route /user/ to the registered instance within 60 s; log:\n%s", cmd.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	cmd.exit(t)
	if resp, err := c.Get(url + "/_edge/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("nginx still answers after warren nginx returned")
	}
}

// warren nginx --out writes the upstreams of an nginx it does not run and
// reloads it through the nginx binary (nginx -t and -s reload with -p
// and -c), as on a user's host.
func TestNginx_OutDrivesAnNginxItDoesNotRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	endpoints, reg := etcdForTest(t, ctx)
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: t.TempDir(), Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	dir := filepath.Dir(p.Upstreams())

	if err := reg.Register(ctx, httpBackend(t, "user-1")); err != nil {
		t.Fatal(err)
	}
	cmd := start(ctx, "nginx", "--registry", "etcd", "--etcd-endpoints", endpoints, "--services", "user",
		"--out", p.Upstreams(), "--nginx-prefix", dir, "--nginx-conf", filepath.Join(dir, "nginx.conf"), "--balance", "least_conn")
	answers(t, p.URL()+"/user/", "user-1", 60*time.Second, cmd.stderr.String) // the user's nginx reloaded with it
	if b, _ := os.ReadFile(p.Upstreams()); !strings.Contains(string(b), "least_conn;") {
		t.Fatalf("--balance least_conn not in the file:\n%s", b)
	}
	cancel()
	cmd.exit(t)
}

// A discovery change that meets a broken nginx.conf is applied once the
// operator fixes nginx.conf, by the 5 s retry, with no further change in
// discovery (tester's finding 2).
func TestNginx_AChangeRefusedForABrokenNginxConfIsAppliedOnceItIsFixed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	endpoints, reg := etcdForTest(t, ctx)
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: t.TempDir(), Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	dir := filepath.Dir(p.Upstreams())
	conf := filepath.Join(dir, "nginx.conf")
	cmd := start(ctx, "nginx", "--registry", "etcd", "--etcd-endpoints", endpoints, "--services", "user",
		"--out", p.Upstreams(), "--nginx-prefix", dir, "--nginx-conf", conf, "--debounce", "20ms")
	waitLog(t, cmd, "upstreams applied", 60*time.Second) // the empty start went out

	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append([]byte("oops_directive on;\n"), good...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, httpBackend(t, "user-1")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, cmd, "oops_directive", 60*time.Second) // refused: nginx.conf is broken
	if err := os.WriteFile(conf, good, 0o644); err != nil {
		t.Fatal(err)
	}
	answers(t, p.URL()+"/user/", "user-1", 30*time.Second, cmd.stderr.String) // by the 5 s retry, with no change in discovery
	cancel()
	cmd.exit(t)
}

// A service named with --services that the registry does not list is
// warned of at start, by name (report j48a 7: "usr" was a silent 502).
func TestEdge_WarnsOfServicesTheRegistryDoesNotList(t *testing.T) {
	srv := memory.NewServer()
	r := srv.Registry()
	defer r.Close()
	if err := r.Register(context.Background(), httpBackend(t, "user-1")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	warnUnlisted(context.Background(), r, []string{"user", "usr"}, log.NewLogfmtLogger(&logs))
	if got := logs.String(); !strings.Contains(got, "service=usr") || strings.Contains(got, "service=user ") || !strings.Contains(got, "listed=user") {
		t.Errorf("warnings: %q; want one for usr naming what is listed, none for user", got)
	}
}
