package idempotency

import (
	"context"
	"sync"
	"time"
)

// MemoryStore is a Store in the process's memory, for a service with a
// single instance or tests; a service of several instances implements
// Store over the storage they share. Results, and the request each claim
// was made for (Attempt.Request), are kept for the retention given to
// NewMemoryStore, then forgotten.
type MemoryStore struct {
	keep time.Duration
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
	swept   time.Time
}

type entry struct {
	until   time.Time // claim expiry while in progress; forget time once done
	forget  time.Time // when the entry is dropped: a claim is kept a retention too
	done    bool
	result  []byte
	attempt string // the claiming execution of Do (Attempt.ID)
	request string // the claiming call's request digest (Attempt.Request)
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
	a, _ := AttemptFrom(ctx)
	if e, ok := m.entries[key]; ok && now.Before(e.forget) {
		switch {
		case e.done:
			return e.result, Done, nil
		case e.request != "" && a.Request != "" && e.request != a.Request:
			// Expired or not, the key was taken for another request.
			return nil, Reused, nil
		case now.Before(e.until):
			return nil, Busy, nil
		}
	}
	m.entries[key] = &entry{until: until, forget: later(until, now.Add(m.keep)), attempt: a.ID, request: a.Request}
	return nil, Claimed, nil
}

// Complete implements Store.
func (m *MemoryStore) Complete(_ context.Context, key string, result []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	forget := m.now().Add(m.keep)
	m.entries[key] = &entry{until: forget, forget: forget, done: true, result: result}
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
		if !now.Before(e.forget) {
			delete(m.entries, k)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
