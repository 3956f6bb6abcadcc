// Package idemdir is an idempotency.Store in a directory, beside the
// records of a jsondir store, so every instance of a demo service sharing
// the directory sees the same keys: a retried call that lands on the other
// instance finds the first attempt's outcome.
//
// One file per key (named by the key's SHA-256) holds the claim's expiry,
// and once the call is done its result and when it may be forgotten. A
// claim appears atomically (hard link of a complete file, which fails when
// the name exists); completing renames the result over it. A claim names
// the execution of idempotency.Do that made it and its request's digest
// (idempotency.Attempt): a release frees only its own claim, and a key
// claimed for another request is answered Reused. Every read-then-write
// of a key's file (a takeover, a release, a sweep's removal, and the
// completion they must not straddle) holds the directory's lock file
// (flock), which every instance sharing the directory takes.
//
// Results are kept for a retention (WithRetention, default
// DefaultRetention), as idempotency.MemoryStore keeps them: a retry later
// than that runs the call again. Claim sweeps the directory of expired
// files at most once per sweep interval, so the directory holds about one
// retention's keys, not every key ever used.
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// DefaultRetention is how long a result is kept when WithRetention is not
// given: far longer than a Warren client retries a call (seconds), so
// every retry finds the result.
const DefaultRetention = time.Hour

// Store keeps keys in one directory.
type Store struct {
	dir  string
	keep time.Duration
	now  func() time.Time

	sweeping sync.Mutex // held by the one Claim that sweeps
	swept    time.Time  // guarded by sweeping
}

type entry struct {
	// Until is the claim's expiry while in progress, and once done when
	// the result may be forgotten (zero in files written before results
	// expired: forgotten a retention after they were written).
	Until  time.Time       `json:"until"`
	Done   bool            `json:"done"`
	Result json.RawMessage `json:"result,omitempty"`
	// Attempt and Request are the claiming execution of Do and its
	// request's digest (idempotency.Attempt); "" in files of older builds.
	Attempt string `json:"attempt,omitempty"`
	Request string `json:"request,omitempty"`
}

// Option configures a Store.
type Option func(*Store) error

// WithRetention keeps each result for keep after its call completed. It
// must be at least idempotency.DefaultClaimTTL.
func WithRetention(keep time.Duration) Option {
	return func(s *Store) error {
		if keep < idempotency.DefaultClaimTTL {
			return fmt.Errorf("idemdir.WithRetention(%s): must be at least the claim TTL (%s)", keep, idempotency.DefaultClaimTTL)
		}
		s.keep = keep
		return nil
	}
}

// Open returns a store in dir, creating it.
func Open(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, keep: DefaultRetention, now: time.Now}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("idemdir: %w", err)
	}
	return s, nil
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

// locked runs f holding the directory's lock file. It is opened per call:
// flock is per open file, so goroutines of one instance exclude each
// other as instances do.
func (s *Store) locked(f func() error) error {
	lf, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("idemdir: %w", err)
	}
	defer lf.Close() // releases the lock
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("idemdir: lock %s: %w", lf.Name(), err)
	}
	return f()
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
func (s *Store) Claim(ctx context.Context, key string, until time.Time) ([]byte, idempotency.State, error) {
	s.sweep()
	p := s.path(key)
	a, _ := idempotency.AttemptFrom(ctx)
	tmp, err := s.write(entry{Until: until, Attempt: a.ID, Request: a.Request})
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p); err == nil {
		return nil, idempotency.Claimed, nil
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, 0, fmt.Errorf("idemdir: %w", err)
	}
	var res []byte
	state := idempotency.Claimed
	err = s.locked(func() error {
		e, err := s.read(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Released meanwhile.
		case err != nil:
			return err
		case e.Done && !s.expired(e, p):
			res, state = e.Result, idempotency.Done
			return nil
		case !e.Done && e.Request != "" && a.Request != "" && e.Request != a.Request:
			// Expired or not, the key was taken for another request.
			state = idempotency.Reused
			return nil
		case !e.Done && s.now().Before(e.Until):
			state = idempotency.Busy
			return nil
		}
		// Free, an expired claim (its instance stopped mid-call), or a
		// result past its retention: take it.
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("idemdir: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return res, state, nil
}

// Complete implements idempotency.Store.
func (s *Store) Complete(_ context.Context, key string, result []byte) error {
	tmp, err := s.write(entry{Done: true, Result: result, Until: s.now().Add(s.keep)})
	if err != nil {
		return err
	}
	return s.locked(func() error {
		if err := os.Rename(tmp, s.path(key)); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("idemdir: %w", err)
		}
		return nil
	})
}

// Release implements idempotency.Store. It frees only the releasing
// attempt's own claim: the releasing attempt may be a stopped one that
// resumed after a retry took its claim over — still running, or done with
// its answer recorded — and freeing that would let a third attempt run
// beside the retry, or lose its answer.
func (s *Store) Release(ctx context.Context, key string) error {
	a, _ := idempotency.AttemptFrom(ctx)
	p := s.path(key)
	return s.locked(func() error {
		e, err := s.read(p)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && (e.Done || e.Attempt != a.ID)) {
			return nil
		}
		// An unreadable file is removed: nothing can be learnt from it.
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("idemdir: %w", err)
		}
		return nil
	})
}

// expired reports whether the entry read from p may be forgotten: a claim
// past its expiry, or a result past its retention.
func (s *Store) expired(e entry, p string) bool {
	if !e.Done || !e.Until.IsZero() {
		return !s.now().Before(e.Until)
	}
	fi, err := os.Stat(p)
	return err == nil && s.now().Sub(fi.ModTime()) >= s.keep
}

// sweepEvery is how often the directory is swept: a tenth of the
// retention, within 1 s and 1 min, so it holds at most ~1.1 retentions
// of keys and a busy store reads its directory at most once a minute.
func (s *Store) sweepEvery() time.Duration {
	return min(max(s.keep/10, time.Second), time.Minute)
}

// sweep removes the files of forgotten keys and temporary files left by a
// crash, when a sweep is due and no other Claim is sweeping. Only files
// not written for a retention are read: a live claim or result is newer.
// A file replaced between the read and the removal (a takeover renames a
// new one over it) is left alone.
func (s *Store) sweep() {
	if !s.sweeping.TryLock() {
		return
	}
	defer s.sweeping.Unlock()
	now := s.now()
	if now.Sub(s.swept) < s.sweepEvery() {
		return
	}
	s.swept = now
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return // best effort: the next sweep tries again
	}
	for _, de := range des {
		fi, err := de.Info()
		if err != nil || !fi.Mode().IsRegular() || now.Sub(fi.ModTime()) < s.keep {
			continue
		}
		p := filepath.Join(s.dir, de.Name())
		if strings.HasPrefix(de.Name(), ".tmp-") {
			os.Remove(p)
			continue
		}
		_ = s.locked(func() error {
			if e, err := s.read(p); err != nil || !s.expired(e, p) {
				return nil
			}
			if cur, err := os.Lstat(p); err == nil && os.SameFile(fi, cur) {
				os.Remove(p)
			}
			return nil
		})
	}
}
