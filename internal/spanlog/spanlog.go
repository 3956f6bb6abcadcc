// Package spanlog reads the spans a --trace-stdout process wrote (the
// stdout exporter's one JSON object per line) out of its log, so a test
// that runs a whole service can see its trace.
package spanlog

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Span is what a test checks of one span line.
type Span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct {
		TraceID, SpanID string
		Remote          bool
	}
}

// Parse returns the spans in log by name (the last of a name wins);
// lines that are not span objects (log lines) are skipped.
func Parse(log string) map[string]Span {
	spans := map[string]Span{}
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s Span
		if strings.HasPrefix(sc.Text(), "{") && json.Unmarshal(sc.Bytes(), &s) == nil && s.Name != "" {
			spans[s.Name] = s
		}
	}
	return spans
}

// Chain reports whether the spans named in names are one trace, each the
// child of the one before it.
func Chain(spans map[string]Span, names ...string) bool {
	for i, n := range names {
		s, ok := spans[n]
		if !ok {
			return false
		}
		if i > 0 {
			p := spans[names[i-1]]
			if s.Parent.SpanID != p.SpanContext.SpanID || s.SpanContext.TraceID != p.SpanContext.TraceID {
				return false
			}
		}
	}
	return true
}

// WaitChain waits up to 20s until the log read by log has the spans named
// in names, each the child of the one before in one trace, the last one's
// parent remote (it crossed the wire: a server span), and fails t if it
// never does. A server span ends last, maybe after its call returned.
func WaitChain(t testing.TB, log func() string, names ...string) {
	t.Helper()
	var spans map[string]Span
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		spans = Parse(log())
		if Chain(spans, names...) && spans[names[len(names)-1]].Parent.Remote {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want spans %q, each the child of the one before, the last one's parent remote; have %+v\n%s", names, spans, log())
		}
	}
}
