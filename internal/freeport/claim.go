package freeport

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/warren-mesh/warren/internal/dirlock"
)

// A claim marks a port as another server's to every picker on the
// machine, in any process: an exclusive lock (flock) on a file named
// after the port. A Keeper claims the ports it holds and keeps the claim
// through Release, until Close. So the window a hold leaves — from Release
// until the restarted server has bound the port, a second or more for a
// Consul agent starting under load — is closed to Pick: it skips claimed
// ports (an agent's gRPC port taken in that window by another test
// process failed a loaded make test). The kernel drops the lock when its
// process dies, so a crashed test leaves no claim behind, only an empty
// file.
type claim struct{ f *os.File }

// claimDir is where the lock files are, one directory per user (locks
// of another user's files could not be taken anyway).
func claimDir() string {
	return filepath.Join(os.TempDir(), "warren-freeport-"+strconv.Itoa(os.Getuid()))
}

// claimFile opens port's lock file, making it (and the directory) with
// create; only a claim makes one, so a check leaves no file behind.
func claimFile(port int, create bool) (*os.File, error) {
	dir := claimDir()
	flag := os.O_RDWR
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		flag |= os.O_CREATE
	}
	return os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), flag, 0o600)
}

// claimPort claims port; nil when it cannot (another claim has it, or no
// lock file can be made: a claim is best effort, as a hold is).
func claimPort(port int) *claim {
	f, err := claimFile(port, true)
	if err != nil {
		return nil
	}
	if ok, err := dirlock.TryLock(f); err != nil || !ok {
		f.Close()
		return nil
	}
	return &claim{f: f}
}

// claimed reports whether another claim, of this process or another, has
// port.
func claimed(port int) bool {
	f, err := claimFile(port, false)
	if err != nil {
		return false // no lock file: never claimed
	}
	defer f.Close() // and with it the lock, if taken
	ok, err := dirlock.TryLock(f)
	return err != nil || !ok
}

// drop ends the claim (closing the file unlocks it). It does nothing on
// a nil claim.
func (c *claim) drop() {
	if c != nil {
		c.f.Close()
	}
}
