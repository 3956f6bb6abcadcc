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
	Create(ctx context.Context, u User) error
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

// MemoryStore is a Store in this process's memory, and its
// idempotency.Store.
type MemoryStore struct {
	*idempotency.MemoryStore
	mu    sync.RWMutex
	users map[string]User
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{MemoryStore: idempotency.NewMemoryStore(10 * time.Minute), users: map[string]User{}}
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, u User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, other := range m.users {
		if other.Email == u.Email {
			return fmt.Errorf("%q: %w", u.Email, ErrEmailTaken)
		}
	}
	m.users[u.ID] = u
	return nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, id string) (User, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.users[id]
	if !ok {
		return User{}, ErrNotFound
	}
	return u, nil
}

// List implements Store.
func (m *MemoryStore) List(_ context.Context, after string, limit int) ([]User, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []User
	for _, u := range m.users {
		if u.ID > after {
			out = append(out, u)
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
	d *jsondir.Dir[User]
	*idemdir.Store
}

// NewDirStore returns a store in dir, creating it; unreadable records and
// repairs after a crash are logged to logger (nil: nowhere).
func NewDirStore(dir string, logger log.Logger) (*DirStore, error) {
	d, err := jsondir.Open[User](dir, jsondir.WithLogger(logger))
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
// record (jsondir.PutUnique), so two instances cannot both take one address
// and a crash mid-write cannot leave the address taken by nobody.
func (s *DirStore) Create(_ context.Context, u User) error {
	if err := s.d.PutUnique(u.Email, u.ID, u); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%q: %w", u.Email, ErrEmailTaken)
		}
		return fmt.Errorf("user store: %w", err)
	}
	return nil
}

// Get implements Store.
func (s *DirStore) Get(_ context.Context, id string) (User, error) {
	u, err := s.d.Get(id)
	if errors.Is(err, fs.ErrNotExist) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("user store: %w", err)
	}
	return u, nil
}

// List implements Store. Unreadable records are skipped (and logged).
func (s *DirStore) List(_ context.Context, after string, limit int) ([]User, error) {
	users, err := s.d.List(after, limit, nil)
	if err != nil {
		return nil, fmt.Errorf("user store: %w", err)
	}
	return users, nil
}
