package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
)

// served is a key in a context: the key of the call being served, or a
// key of the caller's own, and, for a served call (NewServedContext),
// how many keyed calls it has made downstream to each scope (Derive).
type served struct {
	key   string
	count bool // a served call: number its calls
	mu    sync.Mutex
	made  map[string]int
}

// NewContext returns ctx carrying key, a key of your own (an order's
// checkout ID, say): every keyed call made with ctx derives its key from
// it per scope, the same key each time, so a call you try again with it
// gets the first try's result instead of a second effect.
func NewContext(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &served{key: key})
}

// NewServedContext returns ctx carrying key, the key of the call being
// served: the transports' servers put the key a request carries there.
// Unlike NewContext, the keyed calls made with it are numbered per scope
// (see Derive), one context per served attempt.
func NewServedContext(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &served{key: key, count: true})
}

// FromContext returns the key of the call being served, if it has one.
func FromContext(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(ctxKey{}).(*served)
	if !ok || s.key == "" {
		return "", false
	}
	return s.key, true
}

// Derive returns the key of a keyed call to scope (an HTTP method and
// path, a gRPC method) made with ctx. Outside any key it is a fresh key.
// With a key of yours (NewContext) it is derived from that key and scope.
// Inside a served call (NewServedContext), the n-th call to one scope
// gets the n-th key derived from the served call's key: a retried
// upstream call, served again and making the same calls in the same
// order, sends the same keys whatever their bodies hold (a fresh ID or a
// timestamp in a body makes no second effect), and two calls to one
// scope (a debit and a credit) are two effects, not one. Calls to one
// scope made concurrently are numbered in the order they ask; make them
// in a fixed order if each must keep its key across retries. To try a
// call again yourself inside a served call, give both tries a key of
// yours (NewContext): a second call with the served context is another
// effect.
func Derive(ctx context.Context, scope string) string {
	s, ok := ctx.Value(ctxKey{}).(*served)
	if !ok || s.key == "" {
		return NewKey()
	}
	if !s.count {
		return derived(s.key, scope, 0)
	}
	s.mu.Lock()
	if s.made == nil {
		s.made = map[string]int{}
	}
	n := s.made[scope]
	s.made[scope] = n + 1
	s.mu.Unlock()
	return derived(s.key, scope, n)
}

// derived is the n-th key of scope under key. The first is the one
// derived before calls were numbered: a retry served by a newer version
// repeats it.
func derived(key, scope string, n int) string {
	text := key + "\x00" + scope
	if n > 0 {
		text += "\x00" + strconv.Itoa(n)
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:16])
}
