// Package jsondir stores JSON records as one file each in a directory,
// written atomically (temp file + rename), so several processes on one
// machine — or sharing a volume — see the same records. The demo mesh runs
// two instances of every service, and each instance must find what the
// other stored.
package jsondir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrBadID is returned for IDs that could name a path outside the store.
var ErrBadID = errors.New("jsondir: bad record ID")

// Dir holds records of type T.
type Dir[T any] struct{ dir string }

// Open returns the store in dir, creating the directory.
func Open[T any](dir string) (*Dir[T], error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("jsondir: %w", err)
	}
	return &Dir[T]{dir: dir}, nil
}

func (d *Dir[T]) path(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return "", fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return filepath.Join(d.dir, id+".json"), nil
}

// Put writes v under id, replacing any earlier record atomically.
func (d *Dir[T]) Put(id string, v T) error {
	p, err := d.path(id)
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("jsondir: %w", err)
	}
	tmp, err := os.CreateTemp(d.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("jsondir: %w", err)
	}
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Close(), os.Rename(tmp.Name(), p)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("jsondir: %w", err)
	}
	return nil
}

// Get reads the record id; a missing one is an error wrapping
// fs.ErrNotExist.
func (d *Dir[T]) Get(id string) (T, error) {
	var v T
	p, err := d.path(id)
	if err != nil {
		return v, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return v, fmt.Errorf("jsondir: %w", err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("jsondir: %s: %w", id, err)
	}
	return v, nil
}

// IDs returns up to limit record IDs greater than after, sorted.
func (d *Dir[T]) IDs(after string, limit int) ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("jsondir: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(id, ".") && id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids[:min(limit, len(ids))], nil
}

// Claim takes key for good, once across every process sharing the
// directory (O_EXCL); a taken key is an error wrapping fs.ErrExist. Use it
// for uniqueness (an email address).
func (d *Dir[T]) Claim(key string) error {
	f, err := os.OpenFile(filepath.Join(d.dir, ".claim-"+key), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("jsondir: claim: %w", err)
	}
	return f.Close()
}

// Release gives up a claim (after a failed Put).
func (d *Dir[T]) Release(key string) { os.Remove(filepath.Join(d.dir, ".claim-"+key)) }
