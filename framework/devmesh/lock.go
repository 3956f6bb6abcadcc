package devmesh

import (
	"errors"
	"fmt"
	"os"

	"github.com/warren-mesh/warren/internal/dirlock"
)

// ErrStateDirInUse means another mesh runs on the same state directory.
// Starting a second one there would wipe the first one's etcd data and
// demo data under it, so Start refuses instead.
var ErrStateDirInUse = errors.New("devmesh: state directory in use")

// lockStateDir takes the state directory for this process
// (internal/dirlock), so a crashed launcher never leaves a stale lock.
func lockStateDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("devmesh: %w", err)
	}
	release, err = dirlock.Lock(dir)
	switch {
	case errors.Is(err, dirlock.ErrHeld):
		return nil, fmt.Errorf("%w: a mesh is running on %s (%v); stop it first (Ctrl-C where it runs), or give this one its own directory (meshup -state DIR)",
			ErrStateDirInUse, dir, err)
	case err != nil:
		return nil, fmt.Errorf("devmesh: %w", err)
	}
	return release, nil
}
