package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/syncbuf"
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
	} {
		errOut.Reset()
		if code := run(context.Background(), args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, %q; want exit 2 with a message", args, code, errOut.String())
		}
	}
}

// warren nginx --listen runs nginx and follows an etcd registry.
func TestNginx_ListenRunsNginxThatFollowsEtcd(t *testing.T) {
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from user-1 "+r.URL.Path) })}
	go hs.Serve(l) // owned by the test: Close below
	defer hs.Close()

	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"nginx", "--registry", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints(), ","),
			"--services", "user", "--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--debounce", "50ms"}, stdout, stderr)
	}()
	var url string
	deadline := time.Now().Add(60 * time.Second)
	for url == "" {
		if f := strings.Fields(stdout.String()); len(f) > 3 {
			url = strings.TrimSuffix(f[3], ":")
		}
		select {
		case code := <-done:
			t.Fatalf("warren nginx exited %d: %s", code, stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no URL within 60 s: %q %q", stdout, stderr)
		}
	}
	inst := registry.Instance{ID: "user-1", Name: "user", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", l.Addr().(*net.TCPAddr).Port)}}
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	for {
		if resp, err := c.Get(url + "/user/users/u-1"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == "from user-1 /users/u-1" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not route /user/ to the registered instance within 60 s; log:\n%s", stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after the signal; log:\n%s", code, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("warren nginx did not stop within 30 s of its context ending")
	}
	if resp, err := c.Get(url + "/_edge/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("nginx still answers after warren nginx returned")
	}
}
