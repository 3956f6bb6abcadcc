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

// The line after a quiet interval says how many fallbacks were served
// since the previous one, and when that was; other methods log apart.
func TestTrace_LogsAtMostOncePerMethodPerIntervalCountingTheRest(t *testing.T) {
	var buf bytes.Buffer
	tr := NewTrace("user", WithLogger(log.NewLogfmtLogger(&buf)), WithLogEvery(10*time.Second))
	now := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	tr.now = func() time.Time { return now }
	get := Traced(tr, "Get", func(_ context.Context, r req, _ error) (resp, error) { return resp{ID: r.ID}, nil })
	list := Traced(tr, "List", func(_ context.Context, r req, _ error) (resp, error) { return resp{}, nil })

	for range 7 { // one line, then 6 counted
		get(context.Background(), req{ID: "1"}, errDown)
		now = now.Add(time.Second)
	}
	list(context.Background(), req{}, errDown) // its own first line
	now = now.Add(3 * time.Second)             // 10 s after Get's line
	get(context.Background(), req{ID: "1"}, errDown)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (Get, List, Get after 10 s):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "method=Get served=1") || !strings.Contains(lines[1], "method=List served=1") {
		t.Errorf("first lines:\n%s\n%s", lines[0], lines[1])
	}
	if !strings.Contains(lines[2], "method=Get served=7") || !strings.Contains(lines[2], "since=2026-12-06T18:00:00Z") ||
		!strings.Contains(lines[2], "code=unavailable") {
		t.Errorf("third line does not count the 6 in between plus itself since 18:00:00:\n%s", lines[2])
	}
}

// Fallbacks counted after a line, in an episode that then ended quietly,
// get a line of their own with when it ended when the next fallback
// comes, not added to that unrelated one (r58a N2: 140 answers of an
// outage reappeared 10 min later under another cause and since=).
func TestTrace_AnEpisodeThatEndedQuietlyIsClosedApart(t *testing.T) {
	var buf bytes.Buffer
	tr := NewTrace("user", WithLogger(log.NewLogfmtLogger(&buf)), WithLogEvery(10*time.Second))
	now := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	tr.now = func() time.Time { return now }
	get := Traced(tr, "Get", func(_ context.Context, r req, _ error) (resp, error) { return resp{ID: r.ID}, nil })

	for range 6 { // a line, then 5 counted, the last at 18:00:05
		get(context.Background(), req{ID: "1"}, errDown)
		now = now.Add(time.Second)
	}
	now = now.Add(10 * time.Minute) // quiet: the outage is over
	get(context.Background(), req{ID: "1"}, errors.New("another cause"))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (the first, the closed episode, the new one):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[1], `msg="served fallback:`) || !strings.Contains(lines[1], "served=5") ||
		!strings.Contains(lines[1], "code=unavailable") || !strings.Contains(lines[1], "since=2026-12-06T18:00:00Z") ||
		!strings.Contains(lines[1], "until=2026-12-06T18:00:05Z") {
		t.Errorf("the ended episode's line:\n%s", lines[1])
	}
	if !strings.Contains(lines[2], "served=1") || strings.Contains(lines[2], "since=") || !strings.Contains(lines[2], "another cause") {
		t.Errorf("the new episode's line counts more than itself or claims an old start:\n%s", lines[2])
	}
}
