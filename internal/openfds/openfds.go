// Package openfds counts this process's open file descriptors by what
// they are (the target of /proc/self/fd/N), so a test can tell that a
// component released what it opened: an epoll set, a socket, a file.
package openfds

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Epoll is the target of an epoll descriptor.
const Epoll = "anon_inode:[eventpoll]"

// ErrUnsupported is returned where /proc/self/fd cannot be read (not
// Linux, or /proc not mounted); tests skip on it.
var ErrUnsupported = errors.New("openfds: /proc/self/fd is not readable here")

// Count returns how many open descriptors point at target. Descriptors
// closed while the directory is read are not counted.
func Count(target string) (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	n := 0
	for _, e := range ents { // bounded: the directory was read once
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == target {
			n++
		}
	}
	return n, nil
}
