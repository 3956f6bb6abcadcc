package meshup

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// stopWithParent has the kernel send the launcher SIGTERM when the
// process that started it (make) dies. A Ctrl-C reaches the launcher
// itself (foreground), but `timeout 60 make up`, a CI step's time limit
// or an editor's task runner signal only their own child, make: make
// dies, and the launcher, its services and the registry would run on,
// orphaned, holding their ports. With this they stop as on SIGTERM: the
// caller must be handling SIGTERM already. A parent that died before
// the call is handled the same way.
func stopWithParent() error {
	parent := os.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
		return err
	}
	if os.Getppid() != parent {
		return syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
	return nil
}
