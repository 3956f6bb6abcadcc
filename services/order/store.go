package order

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

// Store keeps orders. IDs sort in creation order.
type Store interface {
	// Create stores o and returns it, once per key (the keyed call's
	// idempotency.EffectKey; "" for an unkeyed call, stored every time):
	// when an order was stored under the key already — an earlier attempt
	// of this call whose answer was never recorded — Create stores nothing
	// and returns that order, or idempotency.ErrKeyReused when that order
	// is for another user or other items (see sameCall).
	Create(ctx context.Context, o Order, key string) (Order, error)
	// Placed returns the order stored under key (non-empty) by Create,
	// and false when there is none.
	Placed(ctx context.Context, key string) (Order, bool, error)
	Get(ctx context.Context, id string) (Order, error)
	// List returns up to limit orders with IDs after the given one, of
	// userID when it is not empty.
	List(ctx context.Context, userID, after string, limit int) ([]Order, error)
}

func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("o-%x-%s", time.Now().UnixNano(), hex.EncodeToString(b[:]))
}

// sameCall answers held, the order stored under a key, to the attempt
// that would store o: held if it is o's user and items, else
// idempotency.ErrKeyReused. The key's record in the idempotency store,
// which compares the whole request, is forgotten after its retention;
// the order stays under its key for good, and without this a key reused
// after that would be answered another call's order.
func sameCall(held, o Order) (Order, error) {
	if held.UserID != o.UserID || !slices.Equal(held.Items, o.Items) {
		return Order{}, fmt.Errorf("order store: the key placed another order: %w", idempotency.ErrKeyReused)
	}
	return held, nil
}

// MemoryStore is a Store in this process's memory, and its
// idempotency.Store.
type MemoryStore struct {
	*idempotency.MemoryStore
	mu     sync.RWMutex
	orders map[string]Order
	byKey  map[string]string // idempotency key → order ID
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{MemoryStore: idempotency.NewMemoryStore(10 * time.Minute), orders: map[string]Order{}, byKey: map[string]string{}}
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, o Order, key string) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byKey[key]; ok && key != "" {
		return sameCall(m.orders[id], o)
	}
	m.orders[o.ID] = o
	if key != "" {
		m.byKey[key] = o.ID
	}
	return o, nil
}

// Placed implements Store.
func (m *MemoryStore) Placed(_ context.Context, key string) (Order, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.byKey[key]
	if !ok || key == "" {
		return Order{}, false, nil
	}
	return m.orders[id], true, nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, id string) (Order, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.orders[id]
	if !ok {
		return Order{}, ErrNotFound
	}
	return o, nil
}

// List implements Store.
func (m *MemoryStore) List(_ context.Context, userID, after string, limit int) ([]Order, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Order
	for _, o := range m.orders {
		if o.ID > after && (userID == "" || o.UserID == userID) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b Order) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

// DirStore keeps orders as JSON files in a directory shared by the mesh's
// order instances.
//
// It is also the service's idempotency.Store (keys in dir/.keys), so a
// keyed Create retried on the other instance finds the first outcome.
type DirStore struct {
	d *jsondir.Dir[Order]
	*idemdir.Store
}

// NewDirStore returns a store in dir, creating it; unreadable records and
// repairs after a crash are logged to logger (nil: nowhere).
func NewDirStore(dir string, logger log.Logger) (*DirStore, error) {
	d, err := jsondir.Open[Order](dir, jsondir.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("order store: %w", err)
	}
	keys, err := idemdir.Open(filepath.Join(dir, ".keys"))
	if err != nil {
		return nil, fmt.Errorf("order store: %w", err)
	}
	return &DirStore{d: d, Store: keys}, nil
}

// Create implements Store. A keyed order is claimed under its key together
// with the record (jsondir.PutUnique), so of two attempts of one call that
// both run — the one that took over an expired claim and the stopped one
// that resumed — one writes the order and both answer it.
func (s *DirStore) Create(_ context.Context, o Order, key string) (Order, error) {
	if key == "" {
		if err := s.d.Put(o.ID, o); err != nil {
			return Order{}, fmt.Errorf("order store: %w", err)
		}
		return o, nil
	}
	held, err := s.d.PutUnique(key, o.ID, o)
	switch {
	case errors.Is(err, fs.ErrExist) && held.ID != "":
		return sameCall(held, o)
	case err != nil:
		return Order{}, fmt.Errorf("order store: %w", err)
	}
	return o, nil
}

// Placed implements Store.
func (s *DirStore) Placed(_ context.Context, key string) (Order, bool, error) {
	if key == "" {
		return Order{}, false, nil
	}
	o, err := s.d.Held(key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Order{}, false, nil
	case err != nil:
		return Order{}, false, fmt.Errorf("order store: %w", err)
	}
	return o, true, nil
}

// Get implements Store.
func (s *DirStore) Get(_ context.Context, id string) (Order, error) {
	o, err := s.d.Get(id)
	if errors.Is(err, fs.ErrNotExist) {
		return Order{}, ErrNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("order store: %w", err)
	}
	return o, nil
}

// List implements Store. Filtering by user reads every order after the
// cursor: fine for a demo store. Unreadable records are skipped (and
// logged).
func (s *DirStore) List(_ context.Context, userID, after string, limit int) ([]Order, error) {
	orders, err := s.d.List(after, limit, func(o Order) bool { return userID == "" || o.UserID == userID })
	if err != nil {
		return nil, fmt.Errorf("order store: %w", err)
	}
	return orders, nil
}
