package embedetcd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/storage/datadir"

	"github.com/warren-mesh/warren/internal/dirlock"
)

// lockFile is the file in the data dir a running Server holds locked.
const lockFile = "embedetcd.lock"

// lockDir makes sure no other etcd runs on dir and keeps other Servers
// off it until the returned file is closed. etcd itself would wait for
// its db file's lock forever (bbolt without a timeout), inside
// embed.StartEtcd, where no start timeout reaches it.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedetcd: data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: lock data dir: %w", err)
	}
	ok, err := dirlock.TryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("embedetcd: lock data dir %s: %w", dir, err)
	}
	if !ok {
		f.Close()
		return nil, fmt.Errorf("embedetcd: data dir %s is in use by another embedded etcd (%s is locked)", dir, lockFile)
	}
	// An etcd that is not a Server (a daemon, another library) holds
	// only its db file: probe its lock too, and let go of it at once.
	db := datadir.ToBackendFileName(dir)
	switch g, err := os.OpenFile(db, os.O_RDWR, 0); {
	case errors.Is(err, os.ErrNotExist): // a new member: nobody's yet
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("embedetcd: open %s: %w", db, err)
	default:
		ok, err := dirlock.TryLock(g)
		g.Close() // and with it the probe's lock
		if err != nil || !ok {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("embedetcd: lock %s: %w", db, err)
			}
			return nil, fmt.Errorf("embedetcd: data dir %s is in use by another etcd (its db file %s is locked)", dir, db)
		}
	}
	return f, nil
}
