// Package idemdir is an idempotency.Store in a directory, beside the
// records of a jsondir store, so every instance of a demo service sharing
// the directory sees the same keys: a retried call that lands on the other
// instance finds the first attempt's outcome.
//
// One file per key (named by the key's SHA-256) holds the claim's expiry,
// and once the call is done its result. A claim appears atomically (hard
// link of a complete file, which fails when the name exists); completing
// renames the result over it.
package idemdir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// Store keeps keys in one directory.
type Store struct{ dir string }

type entry struct {
	Until  time.Time       `json:"until"` // claim expiry while in progress
	Done   bool            `json:"done"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Open returns a store in dir, creating it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("idemdir: %w", err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:])+".json")
}

func (s *Store) write(e entry) (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("idemdir: %w", err)
	}
	f, err := os.CreateTemp(s.dir, ".tmp-")
	if err != nil {
		return "", fmt.Errorf("idemdir: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("idemdir: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("idemdir: %w", err)
	}
	return f.Name(), nil
}

func (s *Store) read(p string) (entry, error) {
	var e entry
	b, err := os.ReadFile(p)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("idemdir: %s: %w", p, err)
	}
	return e, nil
}

// Claim implements idempotency.Store.
func (s *Store) Claim(_ context.Context, key string, until time.Time) ([]byte, idempotency.State, error) {
	p := s.path(key)
	tmp, err := s.write(entry{Until: until})
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(tmp)
	for range 3 {
		if err := os.Link(tmp, p); err == nil {
			return nil, idempotency.Claimed, nil
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, 0, fmt.Errorf("idemdir: %w", err)
		}
		e, err := s.read(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // released meanwhile: try again
		case err != nil:
			return nil, 0, err
		case e.Done:
			return e.Result, idempotency.Done, nil
		case time.Now().Before(e.Until):
			return nil, idempotency.Busy, nil
		}
		// An expired claim (its instance stopped mid-call): take it over.
		if err := os.Rename(tmp, p); err != nil {
			return nil, 0, fmt.Errorf("idemdir: %w", err)
		}
		return nil, idempotency.Claimed, nil
	}
	return nil, idempotency.Busy, nil
}

// Complete implements idempotency.Store.
func (s *Store) Complete(_ context.Context, key string, result []byte) error {
	tmp, err := s.write(entry{Done: true, Result: result})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path(key)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("idemdir: %w", err)
	}
	return nil
}

// Release implements idempotency.Store. A key already done keeps its
// result: the releasing attempt may be a stopped one that resumed after a
// retry took its claim over and recorded the answer.
func (s *Store) Release(_ context.Context, key string) error {
	p := s.path(key)
	if e, err := s.read(p); err == nil && e.Done {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("idemdir: %w", err)
	}
	return nil
}
