package nginx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDirInUse is returned (wrapped) by Start when another process holds
// the lock of its Dir: a second edge there would overwrite the first
// one's configuration and upstreams.
var ErrDirInUse = errors.New("directory in use by another warren nginx")

// dirLock is an exclusive flock on DIR/lock, held for as long as the
// Process runs; the kernel releases it when this process exits, however
// it exits. The file holds the owner's process ID, for the error message.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("nginx: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := "another process"
			if pid := strings.TrimSpace(string(owner)); pid != "" {
				who = "process " + pid
			}
			return nil, fmt.Errorf("nginx: %s: %w (%s holds %s; give each edge its own --dir)", dir, ErrDirInUse, who, path)
		}
		return nil, fmt.Errorf("nginx: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// unlock releases the lock; the file stays (removing it would race with
// a process about to lock it).
func (l *dirLock) unlock() {
	if l != nil && l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// checkWritable fails when dir does not take a new file: the atomic
// write of every update needs one. Found at start, not at the first
// update.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".warren-write-check.*")
	if err != nil {
		return fmt.Errorf("nginx: %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
