package meshup

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// foreground puts the launcher in a process group of its own and makes it
// the terminal's foreground group, and returns what gives the terminal
// back (idempotent). Ctrl-C then reaches the launcher alone: without this it also
// reaches `make` and `go run` above it, which report every clean stop as
// a failure (make: *** [Makefile: up] Error 1 / Interrupt) whatever the
// launcher's own exit status. Without a terminal it does nothing.
func foreground() (restore func()) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return func() {}
	}
	fd := int(tty.Fd())
	prev, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || syscall.Setpgid(0, 0) != nil {
		tty.Close()
		return func() {}
	}
	// A process outside the foreground group that sets the foreground
	// group is sent SIGTTOU, which would stop it: ignore it meanwhile.
	signal.Ignore(syscall.SIGTTOU)
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, syscall.Getpgrp()); err != nil {
		signal.Reset(syscall.SIGTTOU)
		tty.Close()
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, prev)
			signal.Reset(syscall.SIGTTOU)
			tty.Close()
		})
	}
}
