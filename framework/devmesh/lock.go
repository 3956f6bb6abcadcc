package devmesh

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrStateDirInUse means another mesh runs on the same state directory.
// Starting a second one there would wipe the first one's etcd data and
// demo data under it, so Start refuses instead.
var ErrStateDirInUse = errors.New("devmesh: state directory in use")

// lockStateDir takes the state directory for this process: an exclusive
// flock on StateDir/lock, which the kernel releases when the process ends,
// however it ends, so a crashed launcher never leaves a stale lock. The
// file holds the holder's pid for the message a second launcher prints.
func lockStateDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("devmesh: %w", err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devmesh: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if b, err := os.ReadFile(path); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					holder = "pid " + strconv.Itoa(pid)
				}
			}
			return nil, fmt.Errorf("%w: a mesh (%s) is running on %s; stop it first (Ctrl-C where it runs), or give this one its own directory (meshup -state DIR)",
				ErrStateDirInUse, holder, dir)
		}
		return nil, fmt.Errorf("devmesh: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil // closing the descriptor releases the lock
}
