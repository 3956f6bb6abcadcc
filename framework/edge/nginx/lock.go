package nginx

import (
	"errors"
	"fmt"
	"os"

	"github.com/warren-mesh/warren/internal/dirlock"
)

// ErrDirInUse is returned (wrapped) by Start when another process holds
// the lock of its Dir: a second edge there would overwrite the first
// one's configuration and upstreams.
var ErrDirInUse = errors.New("directory in use by another warren nginx")

// dirLock holds DIR/lock for as long as the Process runs
// (internal/dirlock): the kernel releases it when this process exits,
// however it exits.
type dirLock struct{ release func() }

func lockDir(dir string) (*dirLock, error) {
	release, err := dirlock.Lock(dir)
	switch {
	case errors.Is(err, dirlock.ErrHeld):
		return nil, fmt.Errorf("nginx: %s: %w (%v; give each edge its own --dir)", dir, ErrDirInUse, err)
	case err != nil:
		return nil, fmt.Errorf("nginx: lock: %w", err)
	}
	return &dirLock{release: release}, nil
}

// unlock releases the lock. Idempotent.
func (l *dirLock) unlock() {
	if l != nil {
		l.release()
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
