package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// keepOld writes the previous content of each file commitAll replaces
// (fileWrite.old, which commit checked the file still holds) to a
// temporary file beside it, with the file's mode, so putting it back is a
// rename: no write that could fail half-way. "" for a file that did not
// exist.
func keepOld(writes []fileWrite) ([]string, error) {
	olds := make([]string, len(writes))
	for i, w := range writes {
		if !w.existed {
			continue
		}
		fi, err := os.Stat(w.path)
		if err != nil {
			return olds, err
		}
		f, err := os.CreateTemp(filepath.Dir(w.path), ".svcgen-*.old")
		if err != nil {
			return olds, err
		}
		olds[i] = f.Name()
		_, werr := f.Write(w.old)
		if err := errors.Join(werr, f.Chmod(fi.Mode().Perm()), f.Close()); err != nil {
			return olds, fmt.Errorf("keep the content of %s: %w", w.path, err)
		}
	}
	return olds, nil
}

// putBack undoes the renames of done (the first files of a commitAll),
// last first: each file gets its kept content again, or goes when it did
// not exist, but only while it still holds what svcgen wrote; a file
// saved since is left as it is, and said so.
func putBack(done []fileWrite, olds []string) error {
	var errs []error
	for j := len(done) - 1; j >= 0; j-- {
		w := done[j]
		cur, err := os.ReadFile(w.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("put back %s: %w", w.path, err))
			continue
		}
		if !bytes.Equal(cur, w.data) {
			errs = append(errs, fmt.Errorf("%s changed after svcgen replaced it, so svcgen did not put its old content back (your change is kept)", w.path))
			continue
		}
		if !w.existed {
			err = os.Remove(w.path)
		} else if err = os.Rename(olds[j], w.path); err == nil {
			olds[j] = ""
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("put back %s: %w", w.path, err))
		}
	}
	if len(errs) > 0 {
		return errNotPutBack{errors.Join(errs...)}
	}
	return nil
}

// errNotPutBack is putBack's failure: some file still has svcgen's new
// content (or the user's since), so what it names may still be listed.
type errNotPutBack struct{ err error }

func (e errNotPutBack) Error() string { return e.err.Error() }
func (e errNotPutBack) Unwrap() error { return e.err }
