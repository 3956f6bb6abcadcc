//go:build compose

package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var httpClient = &http.Client{Timeout: 20 * time.Second}

// call sends a JSON request and decodes a JSON answer into out (if not
// nil); it returns the status code.
func call(ctx context.Context, method, url string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %d %q: %w", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, nil
}

type user struct{ ID, Name, Email string }

type item struct {
	SKU        string `json:"sku"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

type order struct {
	ID         string `json:"id"`
	UserID     string `json:"user_id"`
	UserName   string `json:"user_name"`
	TotalCents int64  `json:"total_cents"`
	Code       string `json:"code"` // set on errors
}

// demoFlow walks README's demo through the published ports, crossing
// replicas: a user created on user replica 1 is read on replica 2 (the
// shared volume), an order placed on order replica 1 (which looks the
// user up through discovery) is read and listed on replica 2, and an
// order for an unknown user is refused with the user service's answer.
func demoFlow(ctx context.Context, t *testing.T, users, orders [2]string) string {
	t.Helper()
	var u user
	email := fmt.Sprintf("ada-%d@example.com", time.Now().UnixNano())
	if code, err := call(ctx, "POST", users[0]+"/users", map[string]string{"name": "Ada Lovelace", "email": email}, &u); err != nil || code != 201 || u.ID == "" {
		t.Fatalf("create user: %d %+v %v", code, u, err)
	}
	var got user
	if code, err := call(ctx, "GET", users[1]+"/users/"+u.ID, nil, &got); err != nil || code != 200 || got.Email != email {
		t.Fatalf("get user on the other replica: %d %+v %v", code, got, err)
	}

	var o order
	body := map[string]any{"user_id": u.ID, "items": []item{{"book", 2, 1250}}}
	if code, err := call(ctx, "POST", orders[0]+"/orders", body, &o); err != nil || code != 201 || o.UserName != "Ada Lovelace" || o.TotalCents != 2500 {
		t.Fatalf("create order: %d %+v %v", code, o, err)
	}
	var o2 order
	if code, err := call(ctx, "GET", orders[1]+"/orders/"+o.ID, nil, &o2); err != nil || code != 200 || o2.ID != o.ID {
		t.Fatalf("get order on the other replica: %d %+v %v", code, o2, err)
	}
	var list struct{ Orders []order }
	if code, err := call(ctx, "GET", orders[1]+"/orders?user_id="+u.ID, nil, &list); err != nil || code != 200 || len(list.Orders) != 1 || list.Orders[0].ID != o.ID {
		t.Fatalf("list orders of the user: %d %+v %v", code, list, err)
	}
	var refused order
	bad := map[string]any{"user_id": "u-nobody", "items": []item{{"book", 1, 1250}}}
	if code, err := call(ctx, "POST", orders[1]+"/orders", bad, &refused); err != nil || code != 422 || refused.Code != "unknown_user" {
		t.Fatalf("order for an unknown user: %d %+v %v; want 422 unknown_user", code, refused, err)
	}
	return u.ID
}

// checkConsulCatalog asks the Consul agent (its published port) for the
// passing instances of each service.
func checkConsulCatalog(ctx context.Context, t *testing.T, consulURL string, want map[string]int) {
	t.Helper()
	for svc, n := range want {
		var entries []json.RawMessage
		code, err := call(ctx, "GET", consulURL+"/v1/health/service/"+svc+"?passing=true", nil, &entries)
		if err != nil || code != 200 || len(entries) != n {
			t.Errorf("consul: %d passing instances of %s (status %d, %v), want %d", len(entries), svc, code, err, n)
		}
	}
}

// orderLoad places orders for one user from 4 workers, alternating between the
// two order replicas, each worker pausing 25 ms between calls. Placing an
// order reads the user from the user service, so every order crosses the
// mesh. It is bounded: at most maxLoadRequests calls, each within the
// client's 20 s timeout, and it stops with stop() or ctx.
type orderLoad struct {
	ok, failed, okSinceMark atomic.Int64
	mu                      sync.Mutex
	errs                    []string
	latMax                  time.Duration
	cancel                  context.CancelFunc
	wg                      sync.WaitGroup
	once                    sync.Once
	res                     loadResult
}

const maxLoadRequests = 6000

type loadResult struct {
	ok, failed int64
	errs       []string
	latMax     time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d orders placed, %d failed, slowest %s", r.ok, r.failed, r.latMax.Round(time.Millisecond))
}

func startLoad(ctx context.Context, orders [2]string, userID string) *orderLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &orderLoad{cancel: cancel}
	var sent atomic.Int64
	body := map[string]any{"user_id": userID, "items": []item{{"pencil", 1, 99}}}
	for w := range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ctx.Err() == nil && sent.Add(1) <= maxLoadRequests; i++ {
				start := time.Now()
				var o order
				code, err := call(ctx, "POST", orders[i%2]+"/orders", body, &o)
				if ctx.Err() != nil && (err != nil || code != 201) {
					return // cut off by stop(), not a failure of the mesh
				}
				d := time.Since(start)
				l.mu.Lock()
				l.latMax = max(l.latMax, d)
				if err != nil || code != 201 {
					if len(l.errs) < 5 {
						l.errs = append(l.errs, fmt.Sprintf("%s: status %d %+v %v", orders[i%2], code, o, err))
					}
					l.mu.Unlock()
					l.failed.Add(1)
				} else {
					l.mu.Unlock()
					l.ok.Add(1)
					l.okSinceMark.Add(1)
				}
				select {
				case <-ctx.Done():
				case <-time.After(25 * time.Millisecond):
				}
			}
		}()
	}
	return l
}

// mark starts counting successes afresh (for waitOK).
func (l *orderLoad) mark() { l.okSinceMark.Store(0) }

// waitOK waits until n orders were placed since mark (or the start).
func (l *orderLoad) waitOK(ctx context.Context, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for l.okSinceMark.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d orders placed in %s (want %d); %d failed", l.okSinceMark.Load(), limit, n, l.failed.Load())
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	if l.ok.Load()+l.failed.Load() >= maxLoadRequests {
		return errors.New("the load generator ran out of requests")
	}
	return nil
}

// stop ends the load and returns its totals; it is idempotent.
func (l *orderLoad) stop() loadResult {
	l.once.Do(func() {
		l.cancel()
		l.wg.Wait()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.res = loadResult{ok: l.ok.Load(), failed: l.failed.Load(), errs: l.errs, latMax: l.latMax}
	})
	return l.res
}

// callText GETs url and keeps the body as text (at most 4 MiB).
func callText(ctx context.Context, url string, body *string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	*body = string(b)
	return resp.StatusCode, err
}
