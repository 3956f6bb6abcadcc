package meshup

import (
	"bytes"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/stopsig"
)

// roleEnv makes the test binary play a part in
// TestStopWithParent_KilledParentStopsTheLauncher instead of running tests.
const roleEnv = "MESHUP_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "parent":
		os.Exit(playParent())
	case "launcher":
		os.Exit(playLauncher())
	case "hangup":
		os.Exit(playHangup())
	}
	os.Exit(m.Run())
}

// playParent is make: it starts the launcher, says its PID, and waits to
// be killed (at most a minute).
func playParent() int {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=launcher")
	if err := cmd.Start(); err != nil {
		return 1
	}
	os.Stdout.WriteString(strconv.Itoa(cmd.Process.Pid) + "\n")
	time.Sleep(time.Minute)
	return 0
}

// playLauncher handles SIGTERM as meshup does, follows its parent, and
// writes to $OUT what ended it.
func playLauncher() int {
	out := os.Getenv("OUT")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	if err := stopWithParent(); err != nil {
		os.WriteFile(out, []byte("error "+err.Error()), 0o644)
		return 1
	}
	os.WriteFile(out, []byte("ready\n"), 0o644)
	select {
	case <-sigs:
		os.WriteFile(out, []byte("ready\nSIGTERM\n"), 0o644)
		return 0
	case <-time.After(30 * time.Second):
		os.WriteFile(out, []byte("ready\nno signal in 30s\n"), 0o644)
		return 1
	}
}

// When the process that started the launcher is killed (timeout(1) or a
// task runner kills make, not its children), the launcher gets SIGTERM
// and stops the mesh instead of running on orphaned.
func TestStopWithParent_KilledParentStopsTheLauncher(t *testing.T) {
	out := filepath.Join(t.TempDir(), "launcher")
	var stdout bytes.Buffer
	parent := exec.Command(os.Args[0])
	parent.Env = append(os.Environ(), roleEnv+"=parent", "OUT="+out)
	parent.Stdout = &stdout
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the launcher too, whatever happened
		parent.Process.Kill()
		parent.Wait()
		if pid, err := strconv.Atoi(strings.TrimSpace(stdout.String())); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	read := func() string { b, _ := os.ReadFile(out); return string(b) }
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(read(), what); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("launcher did not report %q within 20s; it wrote %q", what, read())
			}
		}
	}
	waitFor("ready\n")
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	waitFor("SIGTERM\n")
}

// playHangup takes the signals the launcher takes, says so on stdout, and
// writes which one came.
func playHangup() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopsig.Signals()...)
	os.Stdout.WriteString("ready\n")
	select {
	case sig := <-sigs:
		os.Stdout.WriteString("got " + sig.String() + "\n")
		return 0
	case <-time.After(30 * time.Second):
		os.Stdout.WriteString("no signal in 30s\n")
		return 1
	}
}

// A closed terminal or SSH session sends the launcher (the foreground
// process group) SIGHUP: it stops the mesh in order as on Ctrl-C, where it
// died at once (exit 129), the registry with the services.
func TestStopSignals_SIGHUPStopsTheLauncher(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=hangup")
	// Under nohup (`nohup make test`) the child would inherit SIGHUP
	// ignored and, as it should, keep ignoring it; execve starts it with
	// the default for a signal this process catches.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan string, 4)
	go func() {
		b := make([]byte, 256)
		var acc string
		for {
			n, err := out.Read(b)
			acc += string(b[:n])
			for strings.Contains(acc, "\n") {
				i := strings.Index(acc, "\n")
				lines <- acc[:i]
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	if l := <-lines; l != "ready" {
		t.Fatalf("child said %q", l)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	got := <-lines
	err = cmd.Wait()
	if got != "got hangup" || err != nil {
		t.Fatalf("after SIGHUP the launcher's signal handling said %q and exited %v; want it to take the signal and exit 0", got, err)
	}
}
