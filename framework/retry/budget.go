package retry

import "sync/atomic"

// Budget caps retries at a ratio of requests: every request deposits ratio
// of a token, every retry spends a whole one. A burst of tokens (also the
// most it ever holds) lets a quiet client retry its first failures. Over
// any stretch, retries ≤ ratio × requests + burst.
//
// A hedge is paid only while the budget keeps half its burst (rounded
// down) after paying: no call needs its hedge to succeed, and during a
// machine-wide stall every attempt is slow and hedges would otherwise
// spend the tokens the retries of the next fault need. Retries may spend
// the last token. Below the reserve every deposit goes to retries until
// the budget climbs back, so the reserve is a priority, not just a few
// tokens set aside. A budget whose burst is 1 keeps none.
//
// Retries are not ranked among themselves: a reserve kept for retries
// after refusals (Unprocessed) sits idle through a hang, where every
// retry follows a timeout (a test/faults hang run with such a reserve
// failed a call for want of a token for a timeout's retry).
//
// It is lock-free and safe for concurrent use.
type Budget struct {
	perRequest   int64 // milli-tokens deposited per request
	limit        int64 // milli-tokens held at most
	hedgeReserve int64 // milli-tokens a hedge leaves
	tokens       atomic.Int64
	retries      atomic.Int64
	refused      atomic.Int64
}

const milli = 1000

// NewBudget returns a budget of ratio (0.2 = 20%) retries per request plus
// burst, starting full.
func NewBudget(ratio float64, burst int) *Budget {
	burst = max(burst, 1)
	b := &Budget{
		perRequest:   int64(ratio * milli),
		limit:        int64(burst) * milli,
		hedgeReserve: int64(burst/2) * milli,
	}
	b.tokens.Store(b.limit)
	return b
}

// Deposit records one request.
func (b *Budget) Deposit() { b.add(b.perRequest) }

// refund gives back a token spent on something that turned out not to
// count (a hedge that was not needless, for the needless-hedge allowance).
func (b *Budget) refund() { b.add(milli) }

func (b *Budget) add(n int64) {
	for {
		t := b.tokens.Load()
		if t >= b.limit {
			return
		}
		if b.tokens.CompareAndSwap(t, min(b.limit, t+n)) {
			return
		}
	}
}

// Withdraw spends a token for one retry; false means no retry now.
func (b *Budget) Withdraw() bool {
	if b.spend(0) {
		return true
	}
	b.refused.Add(1)
	return false
}

// withdrawHedge spends a token for a hedge while the budget holds more
// than its hedge reserve. A refused hedge is simply not sent, which is no
// refused retry: the policy counts it (Policy.HedgesRefused).
func (b *Budget) withdrawHedge() bool { return b.spend(b.hedgeReserve) }

// spend takes one token if at least reserve is left after it.
func (b *Budget) spend(reserve int64) bool {
	for {
		t := b.tokens.Load()
		if t-milli < reserve {
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
