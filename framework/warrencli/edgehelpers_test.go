package warrencli

import (
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

// etcdForTest starts an embedded etcd and a registry client of it; both
// end with the test.
func etcdForTest(t *testing.T, ctx context.Context) (endpoints string, reg *etcd.Registry) {
	t.Helper()
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	reg, err = etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return strings.Join(srv.Endpoints(), ","), reg
}

// running is a warren command run in the background.
type running struct {
	stdout, stderr *syncbuf.Buffer
	done           chan int
}

func start(ctx context.Context, args ...string) *running {
	r := &running{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan int, 1)}
	go func() { r.done <- run(ctx, args, r.stdout, r.stderr) }()
	return r
}

// word waits (60 s at most) for the command's first stdout line and
// returns its i-th word.
func (r *running) word(t *testing.T, i int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if f := strings.Fields(r.stdout.String()); len(f) > i {
			return f[i]
		}
		select {
		case code := <-r.done:
			t.Fatalf("exited %d before printing: %s", code, r.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing printed within 60 s: %q %q", r.stdout, r.stderr)
		}
	}
}

// exit waits (30 s at most, after the caller cancelled its context) for a
// clean exit.
func (r *running) exit(t *testing.T) {
	t.Helper()
	select {
	case code := <-r.done:
		if code != 0 {
			t.Fatalf("exit %d after the signal; log:\n%s", code, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop within 30 s of its context ending")
	}
}

// httpBackend answers its name on loopback until the test ends.
func httpBackend(t *testing.T, name string) registry.Instance {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go hs.Serve(l) // owned by the test: Close at cleanup ends it
	t.Cleanup(func() { hs.Close() })
	return registry.Instance{ID: name, Name: "user", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", l.Addr().(*net.TCPAddr).Port)}}
}

// answers waits (at most limit) until url answers body.
func answers(t *testing.T, url, body string, limit time.Duration, log func() string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		if resp, err := c.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == body {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer %q within %s; log:\n%s", url, body, limit, log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLog waits (at most limit) until the command's log holds s.
func waitLog(t *testing.T, r *running, s string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(r.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within %s:\n%s", s, limit, r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
