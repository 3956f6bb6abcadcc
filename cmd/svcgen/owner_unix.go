//go:build unix

package main

import (
	"os"
	"syscall"
)

// restoreOwner gives path (a symlink itself, not what it points to) the
// owner and group fi had, when it has others. Only root can give a file
// away, so for anyone else this fails (errOwnerNotPutBack) unless the
// owner was theirs already: then there is nothing to do.
func restoreOwner(path string, fi os.FileInfo) error {
	want, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if cur, err := os.Lstat(path); err == nil {
		if have, ok := cur.Sys().(*syscall.Stat_t); ok && have.Uid == want.Uid && have.Gid == want.Gid {
			return nil
		}
	}
	if err := os.Lchown(path, int(want.Uid), int(want.Gid)); err != nil {
		return errOwnerNotPutBack{path: path, uid: want.Uid, gid: want.Gid, err: err}
	}
	return nil
}
