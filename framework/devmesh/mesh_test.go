package devmesh_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/bootstrap"
	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// fakeServiceEnv makes this test binary a service: the mesh runs it as
// services/alpha's binary, and it serves through bootstrap exactly as a
// generated main does.
const fakeServiceEnv = "DEVMESH_TEST_FAKE_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeServiceEnv) == "1" {
		// What the launcher told this instance, for the test to read in
		// the mesh's output.
		fmt.Printf("fake told WARREN_GRACE=%s WARREN_ETCD_TTL=%s WARREN_ZONE=%s\n",
			os.Getenv("WARREN_GRACE"), os.Getenv("WARREN_ETCD_TTL"), os.Getenv("WARREN_ZONE"))
		name := filepath.Base(os.Args[0])
		bootstrap.Main(name, "test", func(context.Context, *bootstrap.Deps) (bootstrap.Transports, error) {
			return fakeTransports(name)
		}, bootstrap.WithRegistries(etcd.Backend()))
		return
	}
	if os.Getenv(launcherEnv) != "" {
		os.Exit(playLauncher())
	}
	os.Exit(m.Run())
}

// TestStartStop_BringsUpEveryInstanceReadyAndStopsInOrder runs the mesh as
// `make up` does, with the defaults: an embedded etcd, two instances of the
// service, zones zone-a/zone-b, --grace 1s and a 5 s TTL given to every
// instance. Start returns only once every instance is listed and answers
// /readyz 200; an instance added with its own variables gets them; Stop
// sends SIGTERM, each instance withdraws, drains and exits 0, a record no
// instance owns is reported as left behind, and the registry stops last.
func TestStartStop_BringsUpEveryInstanceReadyAndStopsInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an etcd and two service processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root, bin := t.TempDir(), t.TempDir()
	dir := filepath.Join(root, "services", "alpha", "cmd", "alpha")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(bin, "alpha")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeServiceEnv, "1") // inherited by the instances only: this process is past TestMain

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out := &syncbuf.Buffer{}
	m, err := devmesh.Start(ctx, devmesh.Config{Root: root, BinDir: bin, StateDir: t.TempDir(),
		Backends: []devmesh.Backend{etcddev.Backend()}, Out: out})
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, out)
	}
	stopped := false
	defer func() {
		if !stopped {
			m.Stop()
		}
	}()

	insts := m.Instances()
	if len(insts) != 2 {
		t.Fatalf("%d instances started, want the default 2\n%s", len(insts), out)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i, in := range insts {
		wantID, wantZone := fmt.Sprintf("alpha-%d", i+1), []string{"zone-a", "zone-b"}[i]
		if in.ID() != wantID || in.Registered.ID != wantID || in.Registered.Zone != wantZone || in.Zone != wantZone {
			t.Errorf("instance %d: id %q, listed as %q in zone %q; want %s in %s", i+1, in.ID(), in.Registered.ID, in.Registered.Zone, wantID, wantZone)
		}
		if len(in.Registered.Endpoints) == 0 {
			t.Fatalf("instance %s listed without endpoints: %+v", in.ID(), in.Registered)
		}
		resp, err := client.Get(in.Registered.Endpoints[0] + "/readyz")
		if err != nil {
			t.Fatalf("%s /readyz when Start returned: %v", in.ID(), err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /readyz = %d when Start returned, want 200", in.ID(), resp.StatusCode)
		}
		if want := "fake told WARREN_GRACE=1s WARREN_ETCD_TTL=5s WARREN_ZONE=" + wantZone; !strings.Contains(out.String(), want) {
			t.Errorf("no instance was told %q (the documented defaults)\n%s", want, out)
		}
	}

	// One more instance, its own variables last so they win over the
	// launcher's (InstanceOptions.Env).
	extra, err := m.StartInstance("alpha", devmesh.InstanceOptions{Env: []string{"WARREN_ZONE=zone-z"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReady(ctx, extra); err != nil {
		t.Fatalf("extra instance: %v\n%s", err, out)
	}
	if extra.ID() != "alpha-3" || extra.Registered.Zone != "zone-z" {
		t.Errorf("extra instance %s listed in zone %q, want alpha-3 in zone-z (its own WARREN_ZONE)", extra.ID(), extra.Registered.Zone)
	}
	insts = append(insts, extra)

	// A record no process of the mesh withdraws: Stop must report it.
	reg, ok := m.Discovery().(registry.Registry)
	if !ok {
		t.Fatalf("the launcher's discovery %T cannot register", m.Discovery())
	}
	stray := registry.Instance{ID: "alpha-stray", Name: "alpha", Endpoints: []string{"http://127.0.0.1:1"}}
	if err := reg.Register(ctx, stray); err != nil {
		t.Fatal(err)
	}

	stopped = true
	err = m.Stop()
	if err == nil || !strings.Contains(err.Error(), "registrations left behind: alpha-stray") {
		t.Fatalf("Stop = %v, want it to report the stray registration (and only it)\n%s", err, out)
	}
	log := out.String()
	for _, in := range insts {
		select {
		case <-in.Exited():
		default:
			t.Fatalf("%s still running after Stop", in.ID())
		}
		if err := in.Err(); err != nil {
			t.Errorf("%s ended with %v, want exit 0 (a clean withdraw and drain)", in.ID(), err)
		}
	}
	if n := strings.Count(log, "phase=withdraw"); n != 3 {
		t.Errorf("%d withdraw lines, want one per instance (SIGTERM, not a kill)\n%s", n, log)
	}
	if n := strings.Count(log, "phase=exit err=none"); n != 3 {
		t.Errorf("%d clean exit lines, want one per instance\n%s", n, log)
	}
	stoppedAt, lastExit := strings.Index(log, "etcd registry stopped"), strings.LastIndex(log, "phase=exit")
	if stoppedAt < 0 || lastExit > stoppedAt {
		t.Errorf("want every instance's exit, then the registry stopped\n%s", log)
	}
}
