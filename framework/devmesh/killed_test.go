package devmesh_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// launcherEnv makes the test binary a launcher: it starts a mesh on the
// root, binaries and state directory named by the variable
// ("ROOT:BIN:STATE"), prints its instances' pids and waits to be killed.
const launcherEnv = "DEVMESH_TEST_LAUNCHER"

func playLauncher() int {
	parts := strings.Split(os.Getenv(launcherEnv), ":")
	if len(parts) != 3 {
		return 2
	}
	os.Setenv(fakeServiceEnv, "1") // for the instances it starts
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m, err := devmesh.Start(ctx, devmesh.Config{Root: parts[0], BinDir: parts[1], StateDir: parts[2],
		Backends: []devmesh.Backend{etcddev.Backend()}, Out: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		return 1
	}
	var pids []string
	for _, in := range m.Instances() {
		pids = append(pids, strconv.Itoa(in.Pid()))
	}
	fmt.Println("pids", strings.Join(pids, " "))
	<-ctx.Done() // killed long before
	m.Stop()
	return 1
}

// gone says whether pid has ended (a zombie nobody reaps counts as ended).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// A launcher killed with SIGKILL (no Ctrl-C, no Stop) takes its instances
// with it, and the next mesh on the same state directory starts cleanly:
// the lock is free, the previous run's etcd data and demo data are gone,
// and it stops with nothing left behind. A guard of audit m2: it passes
// on the code before the audit too.
func TestStart_AfterALauncherKilledWithSIGKILLStartsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two etcds and four service processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root, bin, state := t.TempDir(), t.TempDir(), t.TempDir()
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

	first := exec.Command(exe, "-test.run=^$")
	first.Env = append(os.Environ(), launcherEnv+"="+root+":"+bin+":"+state)
	logs := &syncbuf.Buffer{}
	first.Stderr = logs
	stdout, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Process.Kill(); first.Wait() })
	line := make(chan string, 1)
	go func() { // ends when the launcher's stdout closes
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), "pids ") {
				line <- s.Text()
			}
		}
		close(line)
	}()
	var pids []int
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatalf("the first launcher ended before its mesh was up\n%s", logs)
		}
		for _, f := range strings.Fields(l)[1:] {
			pid, _ := strconv.Atoi(f)
			pids = append(pids, pid)
		}
	case <-time.After(100 * time.Second):
		t.Fatalf("the first mesh was not up within 100s\n%s", logs)
	}
	if len(pids) != 2 {
		t.Fatalf("first mesh instance pids %v, want 2", pids)
	}
	marker := filepath.Join(state, "data", "alpha", "from-the-first-run")
	if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	for _, pid := range pids {
		for deadline := time.Now().Add(20 * time.Second); !gone(pid); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("instance pid %d still runs 20s after its launcher was SIGKILLed", pid)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	t.Setenv(fakeServiceEnv, "1")
	out := &syncbuf.Buffer{}
	m, err := devmesh.Start(ctx, devmesh.Config{Root: root, BinDir: bin, StateDir: state,
		Backends: []devmesh.Backend{etcddev.Backend()}, Out: out})
	if err != nil {
		t.Fatalf("second Start on the killed mesh's state directory: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		m.Stop()
		t.Fatalf("the first run's demo data survived the second start: %v", err)
	}
	if err := m.Stop(); err != nil {
		t.Fatalf("second mesh Stop: %v\n%s", err, out)
	}
}
