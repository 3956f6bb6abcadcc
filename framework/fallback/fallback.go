// Package fallback answers for a dependency that cannot. When a call has
// failed after its retries because the called service is unavailable —
// down, overloaded, too slow, or refused by the client's own concurrency
// limit — a fallback returns a degraded answer instead (a default, a
// partial result, the last good answer from a Cache), so one service's
// outage degrades its callers rather than failing them.
//
// A fallback never covers the request's own faults: an invalid argument, a
// missing record or a denied permission is the true answer, and the
// caller's cancellation means nobody is waiting. Degradable says which
// errors qualify.
//
//	names := fallback.NewCache[string, user.User](10_000, 10*time.Minute)
//	get := fallback.NewCached(names, func(r user.GetRequest) string { return r.ID },
//		func(ctx context.Context, r user.GetRequest, err error) (user.User, error) {
//			return user.User{ID: r.ID}, nil // no name, but the page renders
//		})
//	u, err := get.Call(ctx, req, users.Get)
package fallback

import (
	"context"
	"errors"
	"time"

	"github.com/go-kit/kit/endpoint"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// Func returns a degraded answer to req after the call failed with err. It
// may return an error of its own (the original, or a clearer one) when it
// has nothing to offer.
type Func[Req, Resp any] func(ctx context.Context, req Req, err error) (Resp, error)

// Degradable reports whether err is a failure a fallback should cover: the
// service unavailable or overloaded, a deadline, a transport error, an
// internal error, a rate limit, a method the service does not implement
// (yet) — anything but a business answer about the request (invalid, not
// found, exists, precondition, unauthenticated, denied, too large) or the
// caller cancelling.
func Degradable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch svcerr.KindOf(err) {
	case svcerr.Unavailable, svcerr.DeadlineExceeded, svcerr.Internal, svcerr.ResourceExhausted, svcerr.Unimplemented:
		return true
	}
	return false
}

// Call runs call and, when it fails with a Degradable error, f (if not
// nil) in its place.
func Call[Req, Resp any](ctx context.Context, req Req, call func(context.Context, Req) (Resp, error), f Func[Req, Resp]) (Resp, error) {
	resp, err := call(ctx, req)
	if err == nil || f == nil || !Degradable(err) {
		return resp, err
	}
	return f(ctx, req, err)
}

// Middleware is Call as go-kit endpoint middleware, for a client endpoint
// whose request is a Req and response a Resp.
func Middleware[Req, Resp any](f Func[Req, Resp]) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, r any) (any, error) {
			resp, err := next(ctx, r)
			if err == nil || f == nil || !Degradable(err) {
				return resp, err
			}
			req, ok := r.(Req)
			if !ok {
				return resp, err
			}
			return f(ctx, req, err)
		}
	}
}

// Cache keeps the last good answers by key for a bounded time, least
// recently used evicted first (hashicorp/golang-lru). It is safe for
// concurrent use and runs no goroutine: an answer past its time is
// refused when read and its room goes to newer ones. (hashicorp's
// expirable LRU, used before, swept on a ticker whose goroutine never
// ends and keeps the cache reachable: each Cache made leaked it and its
// answers, TestCache_RunsNoGoroutine.)
type Cache[K comparable, V any] struct {
	lru *lru.Cache[K, cached[V]]
	ttl time.Duration
}

// cached is one answer and when it stops being served (zero: never).
type cached[V any] struct {
	v     V
	until time.Time
}

func (e cached[V]) live(now time.Time) bool { return e.until.IsZero() || now.Before(e.until) }

// NewCache returns a cache of at most size entries (at least 1), each kept
// for ttl (0: until evicted). A stale answer is often better than none, but
// how stale is the caller's call: pick ttl for the data.
func NewCache[K comparable, V any](size int, ttl time.Duration) *Cache[K, V] {
	l, _ := lru.New[K, cached[V]](max(size, 1)) // errs only on a size below 1
	return &Cache[K, V]{lru: l, ttl: max(ttl, 0)}
}

// Put stores v under k.
func (c *Cache[K, V]) Put(k K, v V) {
	e := cached[V]{v: v}
	if c.ttl > 0 {
		e.until = time.Now().Add(c.ttl)
	}
	c.lru.Add(k, e)
}

// Get returns the answer stored under k, if it is still kept.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	if e, ok := c.lru.Get(k); ok && e.live(time.Now()) {
		return e.v, true
	}
	var zero V
	return zero, false
}

// Len returns the number of answers kept (not past their time).
func (c *Cache[K, V]) Len() int {
	n, now := 0, time.Now()
	for _, e := range c.lru.Values() {
		if e.live(now) {
			n++
		}
	}
	return n
}

// Cached is a fallback that remembers answers: every successful call
// stores its answer under key(req), every other answer (a business
// error: not found, denied...) drops it, and a Degradable failure returns
// the stored answer for the same key if there is one, else what then
// returns (nil then: the original error).
type Cached[Req any, K comparable, Resp any] struct {
	cache *Cache[K, Resp]
	key   func(Req) K
	then  Func[Req, Resp]
}

// NewCached returns a Cached fallback over cache.
func NewCached[Req any, K comparable, Resp any](cache *Cache[K, Resp], key func(Req) K, then Func[Req, Resp]) *Cached[Req, K, Resp] {
	return &Cached[Req, K, Resp]{cache: cache, key: key, then: then}
}

// Call runs call, remembering its answer, and falls back as described.
func (c *Cached[Req, K, Resp]) Call(ctx context.Context, req Req, call func(context.Context, Req) (Resp, error)) (Resp, error) {
	resp, err := call(ctx, req)
	if err == nil {
		c.cache.Put(c.key(req), resp)
		return resp, nil
	}
	if !Degradable(err) {
		if !errors.Is(err, context.Canceled) {
			// The service's latest word for the key is not that answer
			// (the record was deleted, the caller may no longer see
			// it): an outage after it must not bring it back.
			c.cache.lru.Remove(c.key(req))
		}
		return resp, err
	}
	if v, ok := c.cache.Get(c.key(req)); ok {
		return v, nil
	}
	if c.then != nil {
		return c.then(ctx, req, err)
	}
	return resp, err
}

// Wrap returns call with the fallback around it, in the shape of a
// generated client's method.
func (c *Cached[Req, K, Resp]) Wrap(call func(context.Context, Req) (Resp, error)) func(context.Context, Req) (Resp, error) {
	return func(ctx context.Context, req Req) (Resp, error) { return c.Call(ctx, req, call) }
}
