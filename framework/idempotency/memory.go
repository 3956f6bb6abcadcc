package idempotency

import (
	"context"
	"sync"
	"time"
)

// MemoryStore is a Store in the process's memory, for a service with a
// single instance or tests; a service of several instances implements
// Store over the storage they share. Results are kept for the retention
// given to NewMemoryStore, then forgotten.
type MemoryStore struct {
	keep time.Duration
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
	swept   time.Time
}

type entry struct {
	until   time.Time // claim expiry while in progress; forget time once done
	done    bool
	result  []byte
	attempt string // the claiming execution of Do (Attempt.ID)
}

// NewMemoryStore returns a store that keeps results for keep (at least a
// claim's TTL).
func NewMemoryStore(keep time.Duration) *MemoryStore {
	return &MemoryStore{keep: max(keep, DefaultClaimTTL), now: time.Now, entries: map[string]*entry{}}
}

// Claim implements Store.
func (m *MemoryStore) Claim(ctx context.Context, key string, until time.Time) ([]byte, State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepLocked(now)
	if e, ok := m.entries[key]; ok && now.Before(e.until) {
		if e.done {
			return e.result, Done, nil
		}
		return nil, Busy, nil
	}
	a, _ := AttemptFrom(ctx)
	m.entries[key] = &entry{until: until, attempt: a.ID}
	return nil, Claimed, nil
}

// Complete implements Store.
func (m *MemoryStore) Complete(_ context.Context, key string, result []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[key] = &entry{until: m.now().Add(m.keep), done: true, result: result}
	return nil
}

// Release implements Store. It frees only the claim of the attempt
// releasing (AttemptFrom): one that outlived its claim leaves the claim
// of the attempt that took it over, and a saved result stays.
func (m *MemoryStore) Release(ctx context.Context, key string) error {
	a, _ := AttemptFrom(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok && !e.done && e.attempt == a.ID {
		delete(m.entries, key)
	}
	return nil
}

// Len returns how many keys the store holds.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// sweepLocked drops expired entries, at most once a second, so memory is
// bounded by the keys of the last retention period.
func (m *MemoryStore) sweepLocked(now time.Time) {
	if now.Sub(m.swept) < time.Second {
		return
	}
	m.swept = now
	for k, e := range m.entries {
		if !now.Before(e.until) {
			delete(m.entries, k)
		}
	}
}
