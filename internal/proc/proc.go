// Package proc runs a child process the way test servers need it: in its
// own process group (so a kill reaches everything it started), killed by
// the kernel if this process dies (Pdeathsig), its output appended to a
// log file, and waited for by one goroutine the Proc owns.
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Proc is one started process.
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts cmd with its stdout and stderr appended to logPath.
func Start(cmd *exec.Cmd, logPath string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", cmd.Path, err)
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	go func() { // owned by the Proc: ends with the process
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Kill sends SIGKILL to the process group (a crash) and waits for the
// process to end. Killing an ended process does nothing.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// Exited is closed when the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }
