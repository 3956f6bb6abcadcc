package proc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

func exited(t *testing.T, p *Proc) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(30 * time.Second):
		p.Kill()
		t.Fatal("the process did not end")
	}
}

// Run sends the output where the command says, and Stop ends a process
// that heeds its signal.
func TestRun_OutputToTheCommandsWritersAndStopBySignal(t *testing.T) {
	out := &syncbuf.Buffer{}
	cmd := exec.Command("sh", "-c", `trap 'echo bye; exit 0' TERM; echo started; while :; do sleep 0.1; done`)
	cmd.Stdout = out
	p, err := Run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "started") {
		if time.Now().After(deadline) {
			p.Kill()
			t.Fatalf("no output: %q", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop(syscall.SIGTERM, 30*time.Second)
	exited(t, p)
	if !strings.Contains(out.String(), "bye") {
		t.Fatalf("the process did not get SIGTERM: %q", out)
	}
	p.Stop(syscall.SIGTERM, time.Second) // ended already: nothing to do
}

// A process that ignores the signal is killed, with its whole group,
// once the grace period is over.
func TestStop_KillsTheGroupAfterTheGracePeriod(t *testing.T) {
	out := &syncbuf.Buffer{}
	cmd := exec.Command("sh", "-c", `trap '' TERM; sleep 300 & echo child $!; wait`)
	cmd.Stdout = out
	p, err := Run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	deadline := time.Now().Add(30 * time.Second)
	for child == 0 {
		if time.Now().After(deadline) {
			p.Kill()
			t.Fatalf("no child: %q", out)
		}
		for _, f := range strings.Fields(out.String()) {
			if n, err := strconv.Atoi(f); err == nil && n > 0 {
				child = n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop(syscall.SIGTERM, 200*time.Millisecond)
	exited(t, p)
	deadline = time.Now().Add(30 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("child %d outlived its group's kill", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs: a zombie (killed, not yet reaped by
// whoever inherited it) does not.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
