package devmesh

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// docs/demo.md: "An instance that exits on its own while the mesh runs is
// reported at once (`user-1 exited unexpectedly (exit status 1); not
// restarted, the mesh runs on without it`); exits the launcher caused
// (stop, the fault hooks' kill and restart) are not." The tests had the
// second half only (a restart is not reported); this one kills an
// instance from outside the launcher and waits for the line, and kills
// another through the launcher's fault hook and checks it stays unsaid.
func TestInstance_AnExitTheLauncherDidNotCauseIsReportedAndItsOwnAreNot(t *testing.T) {
	m, out := toyMeshUp(t, map[string]string{"alpha": scriptServe}, 2)
	waitUp(t, m, "alpha", 2)
	one, two := m.Instance("alpha", 1), m.Instance("alpha", 2)
	if one == nil || two == nil {
		t.Fatalf("instances alpha-1 %v, alpha-2 %v; want both\n%s", one, two, out)
	}

	// Someone else's SIGKILL (the OOM killer, an operator).
	if err := syscall.Kill(one.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	const want = "alpha-1 exited unexpectedly (signal: killed); not restarted, the mesh runs on without it"
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), want); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 30s of alpha-1's SIGKILL\n%s", want, out)
		}
	}
	if !alive(two) {
		t.Fatalf("alpha-2 ended (%v) with alpha-1; want the mesh to run on\n%s", two.Err(), out)
	}

	// The launcher's own kill (the fault hooks') is not a death to report.
	if err := m.Kill(two); err != nil {
		t.Fatal(err)
	}
	m.Stop() // both have exited: nothing is left for it to report
	if n := strings.Count(out.String(), "exited unexpectedly"); n != 1 {
		t.Errorf("%d exits reported as unexpected, want alpha-1's alone\n%s", n, out)
	}
}
