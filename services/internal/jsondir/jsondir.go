// Package jsondir stores JSON records as one file each in a directory, so
// several processes on one machine — or sharing a volume — see the same
// records. The demo mesh runs two instances of every service, and each
// instance must find what the other stored.
//
// Durability: a record is written to a temporary file, fsynced, renamed
// over its name and the directory is fsynced, so an acknowledged write
// survives a power loss and a reader never sees a half-written record.
//
// Uniqueness: PutUnique claims a key (an email address) with a claim file
// that carries the whole record, created atomically (hard link of a
// complete, fsynced file) before the record itself is written. A crash
// between the two leaves a claim that still says what to write: Open rolls
// such claims forward, and so does a later PutUnique that runs into one,
// so a claim is never orphaned.
package jsondir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// MaxIDLen is the longest record ID in bytes; with the ".json" suffix the
// file name stays far below every file system's 255-byte limit.
const MaxIDLen = 128

// ErrBadID is returned for IDs that could not name a record file: empty,
// longer than MaxIDLen, starting with a dot, or holding anything but ASCII
// letters, digits, '-', '_' and '.'.
var ErrBadID = errors.New("jsondir: bad record ID")

const (
	claimPrefix = ".claim-"
	tmpPrefix   = ".tmp-"
)

// Dir holds records of type T.
type Dir[T any] struct {
	dir    string
	logger log.Logger
	// sync is (*os.File).Sync; tests replace it to see what is synced.
	sync func(*os.File) error
}

// Option configures Open.
type Option func(*options)

type options struct{ logger log.Logger }

// WithLogger sets where skipped records and repairs are reported (default:
// nowhere).
func WithLogger(l log.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// Open returns the store in dir, creating the directory, and finishes any
// write a crash interrupted (see the package comment).
func Open[T any](dir string, opts ...Option) (*Dir[T], error) {
	o := options{logger: log.NewNopLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("jsondir: %w", err)
	}
	d := &Dir[T]{dir: dir, logger: o.logger, sync: (*os.File).Sync}
	if err := d.repair(); err != nil {
		return nil, err
	}
	return d, nil
}

// ValidID reports whether id can name a record (see ErrBadID).
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (d *Dir[T]) path(id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("%w: %.*q", ErrBadID, MaxIDLen, id)
	}
	return filepath.Join(d.dir, id+".json"), nil
}

// Put writes v under id, replacing any earlier record atomically and
// durably.
func (d *Dir[T]) Put(id string, v T) error {
	_, err := d.put(id, v)
	return err
}

// put is Put; placed says whether the record was renamed into place, so a
// failure after that (the directory sync) left it there.
func (d *Dir[T]) put(id string, v T) (placed bool, err error) {
	p, err := d.path(id)
	if err != nil {
		return false, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("jsondir: %w", err)
	}
	tmp, err := d.writeTemp(b)
	if err != nil {
		return false, err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("jsondir: %w", err)
	}
	return true, d.syncDir()
}

// claim is the content of a claim file: the record it guards, so a claim
// left by a crash can be completed.
type claim struct {
	ID     string          `json:"id"`
	Record json.RawMessage `json:"record"`
}

// PutUnique writes v under id if no other record holds key, once across
// every process sharing the directory, and returns v. When a record holds
// key already, PutUnique writes nothing and returns that record (its write
// finished first if a crash interrupted it) with an error wrapping
// fs.ErrExist, so the caller can tell its own earlier write (a retry) from
// another's. Use it for uniqueness (an email address, an idempotency key).
// Keys may be any string: claim files are named by the key's SHA-256.
func (d *Dir[T]) PutUnique(key, id string, v T) (T, error) {
	var zero T
	if _, err := d.path(id); err != nil {
		return zero, err
	}
	rec, err := json.Marshal(v)
	if err != nil {
		return zero, fmt.Errorf("jsondir: %w", err)
	}
	b, err := json.Marshal(claim{ID: id, Record: rec})
	if err != nil {
		return zero, fmt.Errorf("jsondir: %w", err)
	}
	tmp, err := d.writeTemp(b)
	if err != nil {
		return zero, err
	}
	defer os.Remove(tmp)
	cp := d.claimPath(key)
	// A holder whose write failed gives the key back (removes its claim);
	// then the key is tried again, a bounded number of times.
	for range 3 {
		// Link, unlike rename, fails when the name exists: the claim
		// appears atomically, complete, or not at all.
		err := os.Link(tmp, cp)
		if errors.Is(err, fs.ErrExist) {
			held, herr := d.holder(cp)
			if errors.Is(herr, fs.ErrNotExist) {
				continue
			}
			return held, errors.Join(fmt.Errorf("jsondir: key taken: %w", fs.ErrExist), herr)
		}
		if err != nil {
			return zero, fmt.Errorf("jsondir: claim: %w", err)
		}
		if err := d.syncDir(); err != nil {
			os.Remove(cp)
			return zero, err
		}
		if placed, err := d.put(id, v); err != nil {
			// Not acknowledged: give the key back, and first take back a
			// record the failure left in place, or the key would be free
			// with a record holding it, and a second PutUnique of the key
			// would succeed beside it. A crash between the two removals
			// leaves the claim, which the next Open completes: a record
			// with its claim, never one without.
			if p, _ := d.path(id); placed {
				os.Remove(p)
			}
			os.Remove(cp)
			return zero, err
		}
		return v, nil
	}
	return zero, fmt.Errorf("jsondir: key taken and given back repeatedly: %w", fs.ErrExist)
}

// Held returns the record that holds key (PutUnique), writing it first if
// a crash left only its claim; an error wrapping fs.ErrNotExist when no
// record holds key.
func (d *Dir[T]) Held(key string) (T, error) {
	return d.holder(d.claimPath(key))
}

// errEmptyClaim marks a claim of an older version, which carried no record:
// its record was written long ago.
var errEmptyClaim = errors.New("empty claim of an older version")

// holder returns the record a claim file guards, writing it first if a
// crash left only the claim; fs.ErrNotExist if the claim is gone.
func (d *Dir[T]) holder(claimPath string) (T, error) {
	var zero T
	b, err := os.ReadFile(claimPath)
	if err != nil {
		return zero, fmt.Errorf("jsondir: %w", err)
	}
	if len(b) == 0 {
		return zero, fmt.Errorf("jsondir: %s: %w", claimPath, errEmptyClaim)
	}
	var c claim
	var v T
	if err := json.Unmarshal(b, &c); err != nil {
		return zero, fmt.Errorf("jsondir: unreadable claim %s: %w", claimPath, err)
	}
	if err := json.Unmarshal(c.Record, &v); err != nil {
		return zero, fmt.Errorf("jsondir: unreadable record in claim %s: %w", claimPath, err)
	}
	cur, err := d.Get(c.ID)
	switch {
	case err == nil:
		return cur, nil
	case errors.Is(err, ErrBadID): // not "gone": the claim is there
		return zero, fmt.Errorf("jsondir: claim %s names a bad record ID %.*q", claimPath, MaxIDLen, c.ID)
	case !errors.Is(err, fs.ErrNotExist):
		return zero, fmt.Errorf("jsondir: record %q of claim %s: %w", c.ID, claimPath, err)
	}
	if err := d.Put(c.ID, v); err != nil {
		return zero, fmt.Errorf("jsondir: complete the record %q of claim %s: %w", c.ID, claimPath, err)
	}
	level.Info(d.logger).Log("msg", "completed a record whose write was interrupted", "id", c.ID)
	return v, nil
}

// repair completes the records of claims left by a crash and removes
// temporary files of interrupted writes that are old enough not to be in
// flight in another process.
func (d *Dir[T]) repair() error {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("jsondir: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(d.dir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), claimPrefix):
			if _, err := d.holder(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errEmptyClaim) {
				level.Warn(d.logger).Log("msg", "claim left alone", "file", p, "err", err)
			}
		case strings.HasPrefix(e.Name(), tmpPrefix):
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
				os.Remove(p)
			}
		}
	}
	return nil
}

// staleTemp is the age after which a temporary file is a crashed write's
// leftover rather than another process's write in flight.
const staleTemp = time.Hour

func (d *Dir[T]) claimPath(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(d.dir, claimPrefix+hex.EncodeToString(sum[:]))
}

// writeTemp writes b to a new fsynced temporary file and returns its name.
func (d *Dir[T]) writeTemp(b []byte) (string, error) {
	f, err := os.CreateTemp(d.dir, tmpPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("jsondir: %w", err)
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, d.sync(f), f.Close()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("jsondir: %w", err)
	}
	return f.Name(), nil
}

// syncDir makes renames and links in the directory durable.
func (d *Dir[T]) syncDir() error {
	f, err := os.Open(d.dir)
	if err != nil {
		return fmt.Errorf("jsondir: %w", err)
	}
	if err := errors.Join(d.sync(f), f.Close()); err != nil {
		return fmt.Errorf("jsondir: sync directory: %w", err)
	}
	return nil
}

// Get reads the record id; a missing one, or an ID no record can have, is
// an error wrapping fs.ErrNotExist.
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
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && ValidID(id) && id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids[:min(limit, len(ids))], nil
}

// List returns up to limit records with IDs greater than after, in ID
// order, that keep accepts (nil keeps all). A record that cannot be read
// or decoded is skipped and logged, so one bad file does not fail every
// page that includes it.
func (d *Dir[T]) List(after string, limit int, keep func(T) bool) ([]T, error) {
	var out []T
	for len(out) < limit {
		ids, err := d.IDs(after, limit)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			v, err := d.Get(id)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue // removed since the directory was read
			case err != nil:
				level.Warn(d.logger).Log("msg", "skipped unreadable record", "id", id, "err", err)
				continue
			}
			if (keep == nil || keep(v)) && len(out) < limit {
				out = append(out, v)
			}
		}
		after = ids[len(ids)-1]
	}
	return out, nil
}
