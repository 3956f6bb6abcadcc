package user

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/idempotency"

	"github.com/warren-mesh/warren/services/internal/idemdir"
	"github.com/warren-mesh/warren/services/internal/jsondir"
)

// Store keeps users. IDs sort in creation order.
type Store interface {
	// Create stores u and returns it, keeping key with it (the keyed
	// call's idempotency.EffectKey; "" for an unkeyed call) in the same
	// write. An email address taken by a user created under the same
	// non-empty key is an earlier attempt of this call whose answer was
	// never recorded: Create returns that user instead of ErrEmailTaken
	// (idempotency.ErrKeyReused if that user has another name).
	Create(ctx context.Context, u User, key string) (User, error)
	Get(ctx context.Context, id string) (User, error)
	// List returns up to limit users with IDs after the given one.
	List(ctx context.Context, after string, limit int) ([]User, error)
}

// newID returns a time-ordered unique ID: u-<unix nanos hex>-<random>.
func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("u-%x-%s", time.Now().UnixNano(), hex.EncodeToString(b[:]))
}

// record is a user as stored: the user and the idempotency key of the
// call that created it (the fields of User, plus "idempotency_key").
type record struct {
	User
	Key string `json:"idempotency_key,omitempty"`
}

// answer answers u, an attempt keyed key to create a user with r's
// address: r's user if r was created by an earlier attempt of that call,
// else ErrEmailTaken. Under the same key with another name it is
// idempotency.ErrKeyReused: the key's record in the idempotency store,
// which compares the whole request, is forgotten after its retention,
// while r keeps its key for good.
func (r record) answer(u User, key string) (User, error) {
	switch {
	case key == "" || r.Key != key:
		// u's address, not r's: r is the zero record when the claim's
		// record could not be read (an older build's empty claim).
		return User{}, fmt.Errorf("%q: %w", u.Email, ErrEmailTaken)
	case r.Name != u.Name:
		return User{}, fmt.Errorf("user store: the key created another user: %w", idempotency.ErrKeyReused)
	}
	return r.User, nil
}

// MemoryStore is a Store in this process's memory, and its
// idempotency.Store.
type MemoryStore struct {
	*idempotency.MemoryStore
	mu    sync.RWMutex
	users map[string]record
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{MemoryStore: idempotency.NewMemoryStore(10 * time.Minute), users: map[string]record{}}
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, u User, key string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, other := range m.users {
		if other.Email == u.Email {
			return other.answer(u, key)
		}
	}
	m.users[u.ID] = record{User: u, Key: key}
	return u, nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, id string) (User, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.users[id]
	if !ok {
		return User{}, ErrNotFound
	}
	return r.User, nil
}

// List implements Store.
func (m *MemoryStore) List(_ context.Context, after string, limit int) ([]User, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []User
	for _, r := range m.users {
		if r.ID > after {
			out = append(out, r.User)
		}
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

// DirStore keeps users as JSON files in a directory (jsondir), so several
// instances of the service on one machine see the same users: the demo
// mesh runs two user instances behind one balancer.
//
// It is also the service's idempotency.Store (keys in dir/.keys), so a
// keyed Create retried on the other instance finds the first outcome.
type DirStore struct {
	d *jsondir.Dir[record]
	*idemdir.Store
}

// NewDirStore returns a store in dir, creating it; unreadable records and
// repairs after a crash are logged to logger (nil: nowhere).
func NewDirStore(dir string, logger log.Logger) (*DirStore, error) {
	d, err := jsondir.Open[record](dir, jsondir.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("user store: %w", err)
	}
	keys, err := idemdir.Open(filepath.Join(dir, ".keys"))
	if err != nil {
		return nil, fmt.Errorf("user store: %w", err)
	}
	return &DirStore{d: d, Store: keys}, nil
}

// Create implements Store. The email address is claimed together with the
// record and its key (jsondir.PutUnique), so two instances cannot both
// take one address, a crash mid-write cannot leave the address taken by
// nobody, and the user written by an attempt whose answer was lost is
// found by the next attempt with the same key.
func (s *DirStore) Create(_ context.Context, u User, key string) (User, error) {
	held, err := s.d.PutUnique(u.Email, u.ID, record{User: u, Key: key})
	switch {
	case errors.Is(err, fs.ErrExist):
		return held.answer(u, key)
	case err != nil:
		return User{}, fmt.Errorf("user store: %w", err)
	}
	return u, nil
}

// Get implements Store.
func (s *DirStore) Get(_ context.Context, id string) (User, error) {
	r, err := s.d.Get(id)
	if errors.Is(err, fs.ErrNotExist) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("user store: %w", err)
	}
	return r.User, nil
}

// List implements Store. Unreadable records are skipped (and logged).
func (s *DirStore) List(_ context.Context, after string, limit int) ([]User, error) {
	recs, err := s.d.List(after, limit, nil)
	if err != nil {
		return nil, fmt.Errorf("user store: %w", err)
	}
	users := make([]User, len(recs))
	for i, r := range recs {
		users[i] = r.User
	}
	return users, nil
}
