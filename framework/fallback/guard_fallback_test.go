package fallback

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// docs/overload.md, Fallbacks: "A call its own caller cancelled leaves the
// answer in place" — a cancel is no word of the service's about the key,
// so the outage after it is still answered from the cache. (Only business
// answers drop it: TestCached_BusinessAnswerDropsTheCachedAnswer.) The
// cancel is neither covered by a fallback nor served from the cache.
func TestGuard_CancelledCallLeavesTheCachedAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := NewCached(NewCache[string, resp](10, time.Hour), func(r req) string { return r.ID }, nil)
	up := func(_ context.Context, r req) (resp, error) { return resp{ID: r.ID, Name: "Ann"}, nil }
	if _, err := c.Call(ctx, req{ID: "1"}, up); err != nil {
		t.Fatal(err)
	}
	gone, stop := context.WithCancel(ctx)
	stop()
	cancelled := func(ctx context.Context, _ req) (resp, error) { return resp{}, ctx.Err() }
	if got, err := c.Call(gone, req{ID: "1"}, cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %+v, %v; want context.Canceled, not the cache", got, err)
	}
	if got, err := c.Call(ctx, req{ID: "1"}, failing(errDown)); err != nil || got.Name != "Ann" {
		t.Fatalf("outage after a cancelled call: %+v, %v; want the last good answer", got, err)
	}
}

// docs/overload.md, "On generated clients": a Trace logs a method's
// fallbacks at once, then at most one line per 10 s by default
// (fallback.WithLogEvery). The other trace tests set the interval
// themselves; this one leaves the default.
func TestGuard_TraceLogsOncePerTenSecondsByDefault(t *testing.T) {
	var buf bytes.Buffer
	tr := NewTrace("user", WithLogger(log.NewLogfmtLogger(&buf)))
	now := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	tr.now = func() time.Time { return now }
	get := Traced(tr, "Get", func(_ context.Context, r req, _ error) (resp, error) { return resp{ID: r.ID}, nil })
	for range 10 { // 18:00:00 … 18:00:09: the first logged, nine counted
		get(context.Background(), req{ID: "1"}, errDown)
		now = now.Add(time.Second)
	}
	if n := strings.Count(strings.TrimSpace(buf.String()), "\n") + 1; n != 1 {
		t.Fatalf("%d lines within 10 s, want 1:\n%s", n, buf.String())
	}
	get(context.Background(), req{ID: "1"}, errDown) // 18:00:10
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "served=10") {
		t.Fatalf("after 10 s: %d lines, want a second one counting 10:\n%s", len(lines), buf.String())
	}
}
