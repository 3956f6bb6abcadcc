package etcdstore

import (
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

const racers = 12

// race runs Claim of key on every store at once and counts the states.
func race(t *testing.T, stores []*Store, key string) map[idempotency.State]int {
	t.Helper()
	ctx := testCtx(t)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[idempotency.State]int{}
		errs   []error
	)
	start := make(chan struct{})
	for _, s := range stores {
		wg.Go(func() {
			<-start
			_, st, err := s.Claim(ctx, key, live())
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			counts[st]++
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return counts
}

func wantOneClaimed(t *testing.T, counts map[idempotency.State]int) {
	t.Helper()
	if counts[idempotency.Claimed] != 1 || counts[idempotency.Busy] != racers-1 {
		t.Fatalf("%d Claimed, %d Busy, %d Done; want 1 Claimed and the rest Busy", counts[idempotency.Claimed], counts[idempotency.Busy], counts[idempotency.Done])
	}
}

// Instances claiming one new key at once: exactly one holds it.
func TestClaim_ConcurrentClaimsOfANewKeyOneWins(t *testing.T) {
	stores := make([]*Store, racers)
	for i := range stores {
		stores[i] = newStore(t)
	}
	wantOneClaimed(t, race(t, stores, "op/"+idempotency.NewKey()))
}

// Instances that all found one expired claim take it over at once:
// exactly one holds it. They are lined up between the read and the
// takeover, so every one of them tries it.
func TestClaim_ConcurrentTakeoversOfAnExpiredClaimOneWins(t *testing.T) {
	key := "op/" + idempotency.NewKey()
	claim(t, newStore(t), key, expired())
	var (
		mu      sync.Mutex
		arrived int
	)
	allRead := make(chan struct{})
	lineUp := func() {
		mu.Lock()
		if arrived++; arrived == racers {
			close(allRead)
		}
		mu.Unlock()
		select {
		case <-allRead:
		case <-time.After(testDeadline):
		}
	}
	stores := make([]*Store, racers)
	for i := range stores {
		stores[i] = newStore(t)
		stores[i].beforeTakeover = lineUp
	}
	wantOneClaimed(t, race(t, stores, key))
}
