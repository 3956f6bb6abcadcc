package retry

import "sync/atomic"

// Budget caps retries at a ratio of requests: every request deposits ratio
// of a token, every retry spends a whole one. A burst of tokens (also the
// most it ever holds) lets a quiet client retry its first failures. Over
// any stretch, retries ≤ ratio × requests + burst.
//
// It is lock-free and safe for concurrent use.
type Budget struct {
	perRequest int64 // milli-tokens deposited per request
	limit      int64 // milli-tokens held at most
	tokens     atomic.Int64
	retries    atomic.Int64
	refused    atomic.Int64
}

const milli = 1000

// NewBudget returns a budget of ratio (0.2 = 20%) retries per request plus
// burst, starting full.
func NewBudget(ratio float64, burst int) *Budget {
	b := &Budget{perRequest: int64(ratio * milli), limit: int64(max(burst, 1)) * milli}
	b.tokens.Store(b.limit)
	return b
}

// Deposit records one request.
func (b *Budget) Deposit() {
	for {
		t := b.tokens.Load()
		if t >= b.limit {
			return
		}
		if b.tokens.CompareAndSwap(t, min(b.limit, t+b.perRequest)) {
			return
		}
	}
}

// Withdraw spends a token for one retry; false means no retry now.
func (b *Budget) Withdraw() bool { return b.withdraw(true) }

// withdraw is Withdraw; a hedge the budget cannot pay for is simply not
// sent, which is no refused retry (countRefusal false).
func (b *Budget) withdraw(countRefusal bool) bool {
	for {
		t := b.tokens.Load()
		if t < milli {
			if countRefusal {
				b.refused.Add(1)
			}
			return false
		}
		if b.tokens.CompareAndSwap(t, t-milli) {
			b.retries.Add(1)
			return true
		}
	}
}

// Stats returns how many retries (hedges among them) the budget allowed,
// and how many retries it refused.
func (b *Budget) Stats() (retries, refused int64) { return b.retries.Load(), b.refused.Load() }
