package warrencli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/regcli"
)

// signalChildEnv makes TestMain_SecondSignal the warren process its
// parent signals, not the parent; its value is the repeat window.
const signalChildEnv = "WARREN_CLI_SIGNAL_CHILD"

// signalChild is warren with one command, hold, standing for nginx or xds:
// it says "holding", waits for the stop, says "stopping", and takes the
// graceful path (an nginx finishing its requests) until its stdin closes
// or for 30s at most, then says "stopped" and returns: exit 0.
func signalChild(t *testing.T) {
	window, err := time.ParseDuration(os.Getenv(signalChildEnv))
	if err != nil {
		t.Fatal(err)
	}
	cmds := []command{{"hold", "hold", func(ctx context.Context, env regcli.Env, _ []string) error {
		fmt.Fprintln(env.Stdout, "holding")
		<-ctx.Done()
		fmt.Fprintln(env.Stdout, "stopping")
		released := make(chan struct{})
		go func() { // ends with the process at the latest
			io.Copy(io.Discard, os.Stdin)
			close(released)
		}()
		select {
		case <-released:
		case <-time.After(30 * time.Second):
		}
		fmt.Fprintln(env.Stdout, "stopped")
		return nil
	}}}
	os.Exit(runSignalled([]string{"hold"}, cmds, nil, window))
}

// cliChild is a warren process started by startCLIChild.
type cliChild struct {
	cmd     *exec.Cmd
	release io.Closer // the child's stdin: closing it ends the graceful path
	mu      sync.Mutex
	lines   []string // stdout and stderr
	exited  chan struct{}
	running sync.WaitGroup
}

// startCLIChild runs this test binary as warren in a process group of its
// own (as timeout(1) does) and waits until its command runs. With
// ignoreHangup it starts with SIGHUP ignored, as under nohup.
func startCLIChild(t *testing.T, window time.Duration, ignoreHangup bool) *cliChild {
	t.Helper()
	args := []string{"-test.run=^TestMain_SecondSignal$", "-test.timeout=60s"}
	cmd := exec.Command(os.Args[0], args...)
	if ignoreHangup {
		cmd = exec.Command("sh", append([]string{"-c", `trap "" HUP; exec "$0" "$@"`, os.Args[0]}, args...)...)
	} else {
		// Caught here, SIGHUP starts at its default in the child even
		// when this test runs under nohup: execve resets a caught signal.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		t.Cleanup(func() { signal.Stop(hup) })
	}
	cmd.Env = append(os.Environ(), signalChildEnv+"="+window.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := &cliChild{cmd: cmd, exited: make(chan struct{})}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.release = stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []io.Reader{stdout, stderr} {
		c.running.Add(1)
		go func() { // owned by c: ends when the child's end of r closes
			defer c.running.Done()
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				c.mu.Lock()
				c.lines = append(c.lines, sc.Text())
				c.mu.Unlock()
			}
		}()
	}
	go func() { // owned by c: ends when the child exits
		c.running.Wait()
		cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-c.exited
		}
	})
	if !c.waitLine("holding") {
		t.Fatalf("warren did not run its command within 20s: %q", c.output())
	}
	return c
}

func (c *cliChild) output() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

func (c *cliChild) has(sub string) bool {
	return slices.ContainsFunc(c.output(), func(l string) bool { return strings.Contains(l, sub) })
}

// waitLine waits until the child writes a line containing sub, and says
// whether it did: not if it exited first or 20s passed.
func (c *cliChild) waitLine(sub string) bool {
	deadline := time.After(20 * time.Second)
	for !c.has(sub) {
		select {
		case <-c.exited:
			return c.has(sub)
		case <-deadline:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// wait returns the child's exit code, failing after 20s.
func (c *cliChild) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.exited:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatalf("warren did not exit within 20s: %q", c.output())
		return -1
	}
}

// `warren nginx` under timeout(1) got SIGTERM twice, to itself and then
// to its process group, took the copy as a second signal, exited at once,
// and nginx's fast shutdown cut requests in flight (report j60a F6). A
// copy within the window is the same signal: the graceful path runs to
// its end. A signal after the window still exits at once.
func TestMain_SecondSignal(t *testing.T) {
	if os.Getenv(signalChildEnv) != "" {
		signalChild(t)
		return
	}
	t.Run("a copy within the window is the same signal", func(t *testing.T) {
		// A long window: what is tested is the rule, not the machine's
		// speed (the one second is stopsig's own test).
		c := startCLIChild(t, time.Minute, false)
		pid := c.cmd.Process.Pid
		syscall.Kill(pid, syscall.SIGTERM) // timeout(1): the child,
		// (once that one was taken: two pending at once are one signal)
		if !c.waitLine("stopping") {
			t.Fatalf("no stop after SIGTERM: %q", c.output())
		}
		syscall.Kill(-pid, syscall.SIGTERM) // then its process group
		if !c.waitLine("warren: terminated again within 1m0s of the first, taken as the same signal") {
			t.Fatalf("the copy of SIGTERM was not taken as the same signal: %q", c.output())
		}
		c.release.Close() // the graceful path ends
		if code := c.wait(t); code != 0 || !c.has("stopped") || c.has("exiting at once") {
			t.Fatalf("after SIGTERM twice: exit %d, output %q; want the graceful path run to its end and exit 0", code, c.output())
		}
	})
	t.Run("a signal after the window exits at once", func(t *testing.T) {
		const window = 200 * time.Millisecond
		c := startCLIChild(t, window, false)
		syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
		if !c.waitLine("stopping") {
			t.Fatalf("no stop after SIGTERM: %q", c.output())
		}
		// "stopping" comes after the first signal was read: a window from
		// now is a window after it.
		time.Sleep(window + 100*time.Millisecond)
		syscall.Kill(c.cmd.Process.Pid, syscall.SIGINT)
		if code := c.wait(t); code != 1 || c.has("stopped") || !c.has("warren: second signal (interrupt); exiting at once") {
			t.Fatalf("second signal after the window: exit %d, output %q; want exit 1 at once", code, c.output())
		}
	})
}

// Started with SIGHUP ignored (nohup), warren keeps ignoring it: it used
// to ask for SIGHUP unconditionally, which undid nohup's ignore, and a
// closed terminal stopped a `nohup warren nginx &`. Here SIGHUP and then
// SIGTERM arrive; SIGTERM must be the first signal taken, not a copy of
// a SIGHUP taken before it.
func TestMain_SIGHUPIgnoredUnderNohup(t *testing.T) {
	c := startCLIChild(t, time.Minute, true)
	pid := c.cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGHUP)
	syscall.Kill(pid, syscall.SIGTERM)
	if !c.waitLine("stopping") {
		t.Fatalf("no stop after SIGTERM: %q", c.output())
	}
	c.release.Close()
	if code := c.wait(t); code != 0 || c.has("again within") || c.has("hangup") {
		t.Fatalf("SIGHUP then SIGTERM under nohup: exit %d, output %q; want SIGHUP ignored, SIGTERM taken alone, exit 0", code, c.output())
	}
}
