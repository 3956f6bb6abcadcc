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
	"runtime"
	"syscall"
	"time"
)

// Proc is one started process.
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Option configures Start and Run.
type Option func(*options)

type options struct{ parentDeath syscall.Signal }

// WithParentDeathSignal sets the signal the kernel sends the child when
// this process dies (default SIGKILL). nginx wants SIGTERM: its master
// then stops its workers, which do not inherit the signal and would go on
// serving on their own after a SIGKILLed master.
func WithParentDeathSignal(sig syscall.Signal) Option {
	return func(o *options) { o.parentDeath = sig }
}

// Start starts cmd with its stdout and stderr appended to logPath.
func Start(cmd *exec.Cmd, logPath string, opts ...Option) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	return Run(cmd, opts...)
}

// Run starts cmd with its output going where cmd.Stdout and cmd.Stderr
// say (nowhere if nil).
//
// The kernel sends the parent-death signal when the *thread* that forked
// the child ends, not the process, and the Go runtime may end threads. So
// the fork happens on a goroutine locked to its thread, which waits for
// the child there and only ends (with its thread) once the child has
// exited.
func Run(cmd *exec.Cmd, opts ...Option) (*Proc, error) {
	o := options{parentDeath: syscall.SIGKILL}
	for _, opt := range opts {
		opt(&o)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: o.parentDeath}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() { // owned by the Proc: ends with the process
		runtime.LockOSThread()
		// Never unlocked: the goroutine ends locked, and its thread with it.
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("proc: start %s: %w", cmd.Path, err)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
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
