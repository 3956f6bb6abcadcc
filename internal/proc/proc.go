// Package proc runs a child process the way test servers and the edge's
// nginx need it: in its own process group (so a kill reaches everything
// it started), killed by the kernel if this process dies (Pdeathsig), and
// waited for by one goroutine the Proc owns. Its output goes to a log
// file (Start) or to the writers the caller set on the command (Run).
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
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
	return Run(cmd)
}

// Run starts cmd with its output going where cmd.Stdout and cmd.Stderr
// say (nowhere if nil).
func Run(cmd *exec.Cmd) (*Proc, error) {
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

// Pid is the process's ID (and its group's).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process alone (a master process such as
// nginx's passes it on to its workers itself).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop asks the process to end with sig, waits up to grace for it, and
// then kills its group (Kill). Stopping an ended process does nothing.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	_ = p.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill sends SIGKILL to the process group (a crash) and waits for the
// process to end. Killing an ended process does nothing.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// Exited is closed when the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }
