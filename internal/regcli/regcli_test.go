package regcli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// clock is the fixed time of the golden files.
var clock = time.Date(2026, 12, 2, 8, 30, 0, 0, time.UTC)

func inst(svc, id, port, zone, version string, registeredAgo time.Duration) registry.Instance {
	md := map[string]string{app.RegisteredMetadataKey: clock.Add(-registeredAgo).Format(time.RFC3339)}
	if svc == "user" {
		md[app.MetricsMetadataKey] = "http://127.0.0.1:5" + port[1:] + "/metrics"
	}
	return registry.Instance{ID: id, Name: svc, Endpoints: []string{"http://127.0.0.1:" + port}, Zone: zone, Version: version, Metadata: md}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func env(out, errOut *bytes.Buffer) Env {
	return Env{Stdout: out, Stderr: errOut, Now: func() time.Time { return clock }}
}

func register(t *testing.T, r registry.Registry, insts ...registry.Instance) {
	t.Helper()
	for _, i := range insts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.Register(ctx, i)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestLs_TableAndJSON(t *testing.T) {
	r := memory.New()
	defer r.Close()
	register(t, r,
		inst("user", "user-2", "41002", "zone-b", "1.4.0", 90*time.Second),
		inst("user", "user-1", "41001", "zone-a", "1.4.0", 2*time.Hour+3*time.Minute),
		inst("order", "order-1", "42001", "", "", 5*time.Second))
	ctx := context.Background()
	for _, tc := range []struct {
		file     string
		services []string
		json     bool
	}{
		{"ls-all.golden", []string{"order", "user"}, false},
		{"ls-user.json.golden", []string{"user"}, true},
		{"ls-none.golden", []string{"payment"}, false},
	} {
		var out, errOut bytes.Buffer
		if err := ls(ctx, env(&out, &errOut), r, tc.services, false, tc.json); err != nil && !errors.Is(err, errNothing) {
			t.Fatalf("%s: %v (stderr %q)", tc.file, err, errOut.String())
		}
		golden(t, tc.file, out.String())
	}
}

// waitLines waits (bounded) until out has n lines.
func waitLines(t *testing.T, out *syncbuf.Buffer, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d lines, have:\n%s", n, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWatch runs a watch command until the returned stop, which
// interrupts it and fails t unless it ends, without an error, within 30 s.
func startWatch(t *testing.T, run func(ctx context.Context, e Env) error, out *syncbuf.Buffer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, Env{Stdout: out, Stderr: out, Now: func() time.Time { return clock }}) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("watch ended with %v, want nil on interrupt", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("watch did not end after its context")
		}
	}
}

func TestWatch_StreamsPresentThenEveryChange(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		srv := memory.NewServer()
		r, other := srv.Registry(), srv.Registry()
		register(t, r, inst("user", "user-1", "41001", "zone-a", "1.4.0", time.Minute))
		out := &syncbuf.Buffer{}
		stop := startWatch(t, func(ctx context.Context, e Env) error { return watch(ctx, e, other, "user", asJSON) }, out)
		waitLines(t, out, 1)
		register(t, r, inst("user", "user-2", "41002", "zone-b", "1.4.0", 0))
		waitLines(t, out, 2)
		register(t, r, inst("user", "user-2", "41002", "zone-b", "1.5.0", 0))
		waitLines(t, out, 3)
		if err := r.Deregister(t.Context(), inst("user", "user-1", "41001", "zone-a", "1.4.0", time.Minute)); err != nil {
			t.Fatal(err)
		}
		waitLines(t, out, 4)
		stop()
		name := "watch.golden"
		if asJSON {
			name = "watch.json.golden"
		}
		golden(t, name, out.String())
		r.Close()
		other.Close()
	}
}

// Several services are watched at once: each one's present instances and
// changes, in whole lines (report j47c).
func TestWatch_SeveralServices(t *testing.T) {
	srv := memory.NewServer()
	r, other := srv.Registry(), srv.Registry()
	defer r.Close()
	defer other.Close()
	register(t, r, inst("user", "user-1", "41001", "zone-a", "1.4.0", time.Minute), inst("order", "order-1", "42001", "", "", 0))
	out := &syncbuf.Buffer{}
	stop := startWatch(t, func(ctx context.Context, e Env) error {
		return watchAll(ctx, e, other, []string{"user", "order"}, false)
	}, out)
	waitLines(t, out, 2)
	register(t, r, inst("order", "order-2", "42002", "", "", 0))
	waitLines(t, out, 3)
	stop()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"present    user  user-1", "present    order  order-1", "register   order  order-2"}
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
			t.Errorf("no line with %q in:\n%s", w, out.String())
		}
	}
	if len(lines) != len(want) {
		t.Errorf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
}

// TestLs_RealEtcdWithTheServicesFlagsAndVariables runs the command as a
// user does against embedded etcd: flags, then the WARREN_* variables, and
// without a service name (the backend lists its services).
func TestLs_RealEtcdWithTheServicesFlagsAndVariables(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, r := startEtcd(t, ctx)
	register(t, r, inst("user", "user-1", "41001", "zone-a", "1.4.0", time.Minute), inst("order", "order-1", "42001", "", "", 0))
	backends := registry.Backends{etcd.Backend(), consul.Backend()}

	var out, errOut bytes.Buffer
	e := Env{Stdout: &out, Stderr: &errOut, Backends: backends}
	if err := Ls(ctx, e, []string{"--registry=etcd", "--etcd-endpoints=" + strings.Join(srv.Endpoints(), ","), "user"}); err != nil {
		t.Fatalf("ls: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "user-1") || strings.Contains(out.String(), "order-1") {
		t.Errorf("warren ls user printed:\n%s", out.String())
	}

	// Flags after the service name, as kubectl allows (reports j47a, j47c).
	out.Reset()
	if err := Ls(ctx, e, []string{"user", "--registry", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints(), ",")}); err != nil {
		t.Fatalf("ls with the flags after the service: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "user-1") || strings.Contains(out.String(), "order-1") {
		t.Errorf("warren ls user --registry … printed:\n%s", out.String())
	}

	// Nothing there: stdout says so as before, stderr what was read
	// (report j47a: a misspelt namespace looked like an empty mesh).
	out.Reset()
	errOut.Reset()
	err := Ls(ctx, e, []string{"--registry=etcd", "--etcd-endpoints=" + strings.Join(srv.Endpoints(), ","), "--etcd-prefix=/nothing-here", "user"})
	var none NoInstance
	if !errors.As(err, &none) || !slices.Equal(none.Services, []string{"user"}) || !strings.HasPrefix(err.Error(), "no instance of user in etcd{") ||
		!strings.Contains(err.Error(), "/nothing-here") || !strings.Contains(out.String(), "(no instances)") {
		t.Errorf("ls user of an empty prefix: %v, stdout %q; want NoInstance naming user and what was read, (no instances)", err, out.String())
	}
	// A named service with no instance beside one with: the other is
	// listed, and the empty one named (report j53d 8).
	out.Reset()
	err = Ls(ctx, e, []string{"--registry=etcd", "--etcd-endpoints=" + strings.Join(srv.Endpoints(), ","), "user", "payment"})
	if !errors.As(err, &none) || !slices.Equal(none.Services, []string{"payment"}) || !strings.Contains(out.String(), "user-1") {
		t.Errorf("ls user payment: %v, stdout %q; want user-1 listed and NoInstance naming payment", err, out.String())
	}
	// Every service (none named) of an empty registry: not an error;
	// stderr says what was read (report j47a).
	out.Reset()
	errOut.Reset()
	if err := Ls(ctx, e, []string{"--registry=etcd", "--etcd-endpoints=" + strings.Join(srv.Endpoints(), ","), "--etcd-prefix=/nothing-here"}); err != nil {
		t.Fatalf("ls of an empty prefix: %v", err)
	}
	if !strings.Contains(out.String(), "(no instances)") || !strings.Contains(errOut.String(), "warren ls: nothing registered in etcd{") ||
		!strings.Contains(errOut.String(), "/nothing-here") {
		t.Errorf("ls of an empty prefix: stdout %q, stderr %q; want (no instances) and what was read", out.String(), errOut.String())
	}

	out.Reset()
	t.Setenv("WARREN_REGISTRY", "etcd")
	t.Setenv("WARREN_ETCD_ENDPOINTS", strings.Join(srv.Endpoints(), ","))
	if err := Ls(ctx, e, nil); err != nil {
		t.Fatalf("ls with variables: %v\n%s", err, errOut.String())
	}
	for _, id := range []string{"user-1", "order-1"} {
		if !strings.Contains(out.String(), id) {
			t.Errorf("warren ls (every service) lacks %s:\n%s", id, out.String())
		}
	}
}

func TestCommands_RefuseBadCommandLinesAsUsage(t *testing.T) {
	backends := registry.Backends{etcd.Backend(), consul.Backend()}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(context.Context, Env, []string) error
		args []string
	}{
		{"ls bad service", Ls, []string{"Bad_Name"}},
		{"ls unknown registry", Ls, []string{"--registry=nope", "user"}},
		{"ls unknown flag", Ls, []string{"--nope"}},
		{"ls bad backend flag", Ls, []string{"--etcd-ttl=-1s", "user"}},
		{"watch no service", Watch, nil},
		{"watch bad second service", Watch, []string{"user", "Bad_Name"}},
		{"page bad service", Page, []string{"Bad_Name"}},
	} {
		var out, errOut bytes.Buffer
		err := tc.run(ctx, Env{Stdout: &out, Stderr: &errOut, Backends: backends}, tc.args)
		var u Usage
		if !errors.As(err, &u) {
			t.Errorf("%s: err = %v, want a Usage error", tc.name, err)
		}
	}
}

// TestPage_ServesARegistryReadOnlyUntilInterrupted runs `warren page`
// against embedded etcd: it prints its URL, serves the state, registers
// nothing, and ends cleanly on interrupt.
func TestPage_ServesARegistryReadOnlyUntilInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, r := startEtcd(t, ctx)
	register(t, r, inst("user", "user-1", "41001", "zone-a", "1.4.0", time.Minute))

	pctx, stop := context.WithCancel(ctx)
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Page(pctx, Env{Stdout: out, Stderr: out, Backends: registry.Backends{etcd.Backend()}},
			[]string{"--etcd-endpoints=" + strings.Join(srv.Endpoints(), ","), "--page-listen=127.0.0.1:0"})
	}()
	waitLines(t, out, 1)
	_, url, ok := strings.Cut(strings.TrimSpace(out.String()), "http://")
	if !ok {
		t.Fatalf("warren page printed %q, want its URL", out.String())
	}
	url = "http://" + strings.Fields(url)[0]
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "api/state")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `"id": "user-1"`) && strings.Contains(string(b), `"registry": "etcd"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed user-1:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Read-only: the only service in etcd is still the one registered above.
	names, err := r.Services(ctx)
	if err != nil || len(names) != 1 || names[0] != "user" {
		t.Errorf("services after warren page: %q, %v", names, err)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("warren page ended with %v, want nil on interrupt", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("warren page did not end after interrupt")
	}
}

// startEtcd runs an embedded etcd and a client of it, both closed at
// cleanup.
func startEtcd(t *testing.T, ctx context.Context) (*embedetcd.Server, *etcd.Registry) {
	t.Helper()
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return srv, r
}

// downDiscovery is discovery whose registry cannot be read.
type downDiscovery struct{}

func (downDiscovery) Instancer(context.Context, string) (sd.Instancer, error) {
	return nil, errors.New("etcd unreachable")
}

// When no service could be read, ls prints no table (an empty one reads as
// "no instances"): the error says it all.
func TestLs_NothingReadPrintsNoTable(t *testing.T) {
	var out, errOut bytes.Buffer
	err := ls(context.Background(), env(&out, &errOut), downDiscovery{}, []string{"user"}, true, false)
	if err == nil || out.Len() != 0 || !strings.Contains(errOut.String(), "etcd unreachable") {
		t.Fatalf("err %v, stdout %q, stderr %q; want an error, no table, the cause on stderr", err, out.String(), errOut.String())
	}
}

type nsRegistry struct{ registry.Registry }

func (nsRegistry) Namespace() string { return "shopp" }

// Where names the namespace a registry resolved (the kubernetes one), so
// an empty listing of a misspelt namespace says which it read.
func TestRegistry_WhereNamesTheNamespace(t *testing.T) {
	r := &Registry{name: "kubernetes"}
	if got := r.Where(nsRegistry{}); got != `the kubernetes registry, namespace "shopp"` {
		t.Fatalf("Where = %q", got)
	}
}

// What a terminal would act on is printed escaped (report j49b: an ESC
// sequence in a record's metadata erased rows and set the window title).
func TestPrintable_EscapesWhatATerminalActsOn(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ok":            "plain text, ok",
		"zone-ä":                    "zone-ä",
		"\x1b[2K\x1b[1A":            `\x1b[2K\x1b[1A`,
		"a\rb":                      `a\rb`,
		"\x1b]0;title\x07":          `\x1b]0;title\a`,
		"bad\xffutf8":               `bad\xffutf8`,
		"http://h:9100/metrics\n-x": `http://h:9100/metrics\n-x`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
