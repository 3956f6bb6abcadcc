package nginx_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/registry"
)

// backend is an HTTP server on loopback that answers its name.
func backend(t *testing.T, name string) registry.Instance {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go s.Serve(l) // owned by the test: Close below ends it
	t.Cleanup(func() { s.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	return registry.Instance{ID: name, Name: "user", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
}

func startNginx(t *testing.T, services ...string) *nginx.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: t.TempDir(), Services: services})
	if errors.Is(err, nginx.ErrNoNginx) {
		t.Fatalf("%v: `make nginx` installs it", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

func get(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serves waits (30 s at most) until nginx answers url with exactly the
// names in want, judged over enough requests to see each of them, and
// then nothing else for 20 more requests: the old workers are gone.
func serves(t *testing.T, url string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := map[string]bool{}
		ok := true
		for range 20 * len(want) {
			code, body := get(url)
			if code != http.StatusOK || !contains(want, body) {
				ok = false
				break
			}
			seen[body] = true
		}
		if ok && len(seen) == len(want) {
			return
		}
		if time.Now().After(deadline) {
			code, body := get(url)
			t.Fatalf("nginx does not serve exactly %v within 30 s; last answer %d %q", want, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestSyncer_RealNginxFollowsTheSetAndKeepsTheLastGoodConfig(t *testing.T) {
	p := startNginx(t, "user")
	url := p.URL() + "/user/"
	if code, body := get(url); code != http.StatusBadGateway {
		t.Fatalf("before any instance: %d %q; want 502 from the down placeholder", code, body)
	}
	a, b := backend(t, "a"), backend(t, "b")
	r, err := nginx.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	s, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	apply := func(s *nginx.Syncer, insts ...registry.Instance) error {
		return s.Apply(ctx, edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: insts}}})
	}
	if err := apply(s, a); err != nil {
		t.Fatal(err)
	}
	// Reload returns once the old workers are gone: the very next
	// requests get the new upstream, no waiting.
	for range 20 {
		if code, body := get(url); code != http.StatusOK || body != "a" {
			t.Fatalf("right after Apply: %d %q; want a", code, body)
		}
	}
	if err := apply(s, a, b); err != nil {
		t.Fatal(err)
	}
	serves(t, url, "a", "b")
	if err := apply(s, a, b); err != nil || s.Stats().Reloads != 2 {
		t.Fatalf("the same set again: %v, %+v; want no write and no reload", err, s.Stats())
	}

	// A template nginx refuses: the file goes back, nginx keeps serving.
	good, err := os.ReadFile(p.Upstreams())
	if err != nil {
		t.Fatal(err)
	}
	bad, err := nginx.NewRenderer(nginx.WithTemplate(`upstream user { server 127.0.0.1:1 no_such_option; }`))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := nginx.NewSyncer(p.Upstreams(), bad, p)
	if err != nil {
		t.Fatal(err)
	}
	err = apply(sb, a)
	if !errors.Is(err, nginx.ErrInvalidConfig) || !strings.Contains(err.Error(), "no_such_option") {
		t.Fatalf("refused template: %v; want ErrInvalidConfig with nginx's message", err)
	}
	if now, _ := os.ReadFile(p.Upstreams()); string(now) != string(good) {
		t.Fatalf("the last good file was not kept:\n%s", now)
	}
	if st := sb.Stats(); st.Rejected != 1 || st.Reloads != 0 {
		t.Fatalf("stats after a refused render: %+v", st)
	}
	if err2 := apply(sb, a); !errors.Is(err2, nginx.ErrInvalidConfig) || sb.Stats().Rejected != 2 {
		t.Fatalf("the same refused render again: %v, %+v; want it tested (and refused) again", err2, sb.Stats())
	}
	serves(t, url, "a", "b")

	// Every instance gone: the placeholder, and nginx answers 502.
	if err := apply(s); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := get(url); code != http.StatusBadGateway; code, _ = get(url) {
		if time.Now().After(deadline) {
			t.Fatalf("no 502 within 30 s of the last instance leaving; got %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Stop()
	select {
	case <-p.Exited():
	default:
		t.Fatal("nginx still running after Stop")
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := p.Reload(ctx); err == nil {
		t.Fatal("Reload of a stopped nginx: no error")
	}
}

func TestStart_RefusesAMissingBinary(t *testing.T) {
	_, err := nginx.Start(context.Background(), nginx.ProcessConfig{Dir: t.TempDir(), Bin: "/nonexistent/nginx", Services: []string{"user"}})
	if !errors.Is(err, nginx.ErrNoNginx) {
		t.Fatalf("got %v; want ErrNoNginx", err)
	}
}

func TestCommand_TestAndReloadAnNginxByItsConfig(t *testing.T) {
	p := startNginx(t, "user")
	dir := strings.TrimSuffix(p.Upstreams(), "/upstreams.conf")
	c := nginx.Command{Prefix: dir, Conf: dir + "/nginx.conf"}
	if err := c.Test(context.Background()); err != nil {
		t.Fatalf("nginx -t on a good config: %v", err)
	}
	r, _ := nginx.NewRenderer()
	s, err := nginx.NewSyncer(p.Upstreams(), r, c)
	if err != nil {
		t.Fatal(err)
	}
	a := backend(t, "a")
	if err := s.Apply(context.Background(), edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: []registry.Instance{a}}}}); err != nil {
		t.Fatal(err)
	}
	serves(t, p.URL()+"/user/", "a") // nginx -s reload reached the master through its pid file
}

// nginx -t failing for a reason outside the rendered file (here a broken
// nginx.conf) is not held against the rendered set: the next Apply of the
// same set tests again, and once nginx.conf is fixed the set goes out.
func TestSyncer_ASetRefusedBecauseOfABrokenNginxConfGoesOutOnceItIsFixed(t *testing.T) {
	p := startNginx(t, "user")
	dir := strings.TrimSuffix(p.Upstreams(), "/upstreams.conf")
	conf := dir + "/nginx.conf"
	c := nginx.Command{Prefix: dir, Conf: conf}
	r, _ := nginx.NewRenderer()
	s, err := nginx.NewSyncer(p.Upstreams(), r, c)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append([]byte("oops_directive on;\n"), good...), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	snap := edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: []registry.Instance{backend(t, "a")}}}}
	err = s.Apply(ctx, snap)
	if !errors.Is(err, nginx.ErrTestFailed) || errors.Is(err, nginx.ErrInvalidConfig) || !strings.Contains(err.Error(), "oops_directive") {
		t.Fatalf("broken nginx.conf: %v; want ErrTestFailed (not the rendered file's fault) with nginx's message", err)
	}
	if err := os.WriteFile(conf, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, snap); err != nil { // the same set, as the watcher's retry sends it
		t.Fatalf("the same set after nginx.conf was fixed: %v; want it tested again and applied", err)
	}
	serves(t, p.URL()+"/user/", "a")
}

// Start keeps the upstreams file a previous run left in Dir (the last
// good set, which a restart while the registry is down goes on serving).
// A service added to the list since gets a placeholder block of its own;
// the others keep theirs (it used to be placeholders for every service:
// a whole-edge outage for one new name). Only a file nginx refuses falls
// back to placeholders for all.
func TestStart_KeepsThePreviousRunsUpstreamsFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: dir, Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	if sf := p.StartFile(); len(sf.Previous) != 0 || !slices.Equal(sf.Placeholders, []string{"user"}) {
		t.Fatalf("first start: %+v; want a placeholder for user", sf)
	}
	r, _ := nginx.NewRenderer()
	s, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: []registry.Instance{backend(t, "a")}}}}); err != nil {
		t.Fatal(err)
	}
	p.Stop()

	p2, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: dir, Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	serves(t, p2.URL()+"/user/", "a")
	p2.Stop()

	// The registry is down and order is new: user keeps its set.
	p3, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: dir, Services: []string{"user", "order"}})
	if err != nil {
		t.Fatalf("a previous file without the new service: %v", err)
	}
	defer p3.Stop()
	if sf := p3.StartFile(); !slices.Equal(sf.Previous, []string{"user"}) || !slices.Equal(sf.Placeholders, []string{"order"}) || sf.Refused != nil {
		t.Fatalf("StartFile %+v; want user kept and a placeholder for order", sf)
	}
	serves(t, p3.URL()+"/user/", "a")
	if code, body := get(p3.URL() + "/order/"); code != http.StatusBadGateway {
		t.Fatalf("order, never listed: %d %q; want 502 from its placeholder", code, body)
	}
	before, _ := os.ReadFile(p3.Upstreams())
	s3, err := nginx.NewSyncer(p3.Upstreams(), r, p3)
	if err != nil {
		t.Fatal(err)
	}
	down := errors.New("registry down")
	res, err := s3.Sync(ctx, edge.Snapshot{Services: []edge.Service{{Name: "user", Unlisted: true, Err: down}, {Name: "order", Unlisted: true, Err: down}}})
	if err != nil || !res.Kept || !slices.Equal(res.Placeholders, []string{"order"}) {
		t.Fatalf("Sync with both unlisted: %+v, %v; want the file kept, order named as a placeholder", res, err)
	}
	if after, _ := os.ReadFile(p3.Upstreams()); string(after) != string(before) {
		t.Fatalf("the kept file changed:\n%s", after)
	}
	serves(t, p3.URL()+"/user/", "a")
	p3.Stop()

	// A file nginx refuses: placeholders for every service, and Start says so.
	if err := os.WriteFile(p3.Upstreams(), []byte("upstream user { server 127.0.0.1:1 no_such_option; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p4, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: dir, Services: []string{"user", "order"}})
	if err != nil {
		t.Fatalf("a previous file nginx refuses: %v; want placeholders instead", err)
	}
	defer p4.Stop()
	if sf := p4.StartFile(); sf.Refused == nil || len(sf.Previous) != 0 || len(sf.Placeholders) != 2 || !strings.Contains(sf.String(), "refused") {
		t.Fatalf("StartFile %+v (%s); want Refused and placeholders for both", sf, sf)
	}
}

// With no previous set for any unlisted service, there is nothing worth
// keeping: the Syncer writes the set (placeholders for the unlisted
// services, their sets for the listed ones) instead of reporting the
// placeholder file as "kept".
func TestSyncer_NothingToKeepFromAFirstStartIsWritten(t *testing.T) {
	p := startNginx(t, "user", "order")
	r, _ := nginx.NewRenderer()
	s, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := s.Sync(ctx, edge.Snapshot{Services: []edge.Service{
		{Name: "user", Unlisted: true, Err: errors.New("registry down")},
		{Name: "order", Instances: []registry.Instance{backend(t, "o")}},
	}})
	if err != nil || res.Kept || !res.Written {
		t.Fatalf("Sync: %+v, %v; want the set written (nothing to keep)", res, err)
	}
	serves(t, p.URL()+"/order/", "o")
}
