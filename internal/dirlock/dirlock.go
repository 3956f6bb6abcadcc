// Package dirlock takes a directory for one process: an exclusive flock on
// DIR/lock, which the kernel releases when the process ends, however it
// ends, so a crash never leaves a stale lock. The file holds the holder's
// process ID, for the message a second process prints.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ErrHeld is returned (wrapped, naming the holder) by Lock when another
// process holds the directory.
var ErrHeld = errors.New("held by another process")

// Lock takes dir (which must exist). release gives it back; the lock file
// stays (removing it would race with a process about to lock it).
func Lock(dir string) (release func(), err error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	ok, err := TryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		f.Close()
		holder := "another process"
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				holder = "pid " + strconv.Itoa(pid)
			}
		}
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrHeld, holder)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, nil // closing the descriptor releases the lock
}
