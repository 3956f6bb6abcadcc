package tracing

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// flakyWriter is a log output whose writes fail when fail says so (a full
// disk, a pipe briefly gone) and land in out otherwise.
type flakyWriter struct {
	out    syncbuf.Buffer
	mu     sync.Mutex
	n      int              // writes
	failed int              // of them failed
	fail   func(n int) bool // of the nth write, from 1
}

func (w *flakyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n++
	fail := w.fail(w.n)
	if fail {
		w.failed++
	}
	w.mu.Unlock()
	if fail {
		return 0, errors.New("disk full")
	}
	return w.out.Write(p)
}

var failuresField = regexp.MustCompile(`failures=(\d+)`)

// loggedFailures sums the failures= of the export failure lines in logs.
func loggedFailures(t *testing.T, logs string) int {
	t.Helper()
	sum := 0
	for _, m := range failuresField.FindAllStringSubmatch(logs, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	return sum
}

// One failed write to the log output ended --trace-stdout for good:
// stdouttrace's json.Encoder keeps its first write error and returns it
// for every span after, which were all dropped. Spans after a failed
// write are written, and the failed writes are counted in the service's
// log, not silent.
func TestNewProvider_StdoutGoesOnAfterAFailedWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &flakyWriter{fail: func(n int) bool { return n == 1 }}
	logs := &syncbuf.Buffer{}
	tp, shutdown, err := NewProvider(ctx, Config{Service: "s", Stdout: w, Logger: log.NewLogfmtLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lost", "second", "third"} {
		_, span := tp.Tracer("t").Start(ctx, name)
		span.End() // the stdout exporter is synchronous: written (or not) here
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	out := w.out.String()
	if strings.Contains(out, `"Name":"lost"`) || !strings.Contains(out, `"Name":"second"`) || !strings.Contains(out, `"Name":"third"`) {
		t.Errorf("stdout after its first write failed:\n%s\nwant the second and third spans, not the first", out)
	}
	if l := logs.String(); loggedFailures(t, l) != 1 || !strings.Contains(l, "disk full") || !strings.Contains(l, "exporter=stdout") {
		t.Errorf("service log: %q; want the one failed write counted, with its error", l)
	}
}

// Spans end on every goroutine that serves a request, each exporting in
// its End: with writes failing now and then, every span is either
// written or counted as a failure in the log, none lost without a word.
func TestNewProvider_StdoutFailedWritesAreCountedUnderConcurrency(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &flakyWriter{fail: func(n int) bool { return n%7 == 3 }}
	logs := &syncbuf.Buffer{}
	tp, shutdown, err := NewProvider(ctx, Config{Service: "s", Stdout: w, Logger: log.NewLogfmtLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				_, span := tp.Tracer("t").Start(ctx, "op")
				span.End()
			}
		})
	}
	wg.Wait()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	written := strings.Count(w.out.String(), `"Name":"op"`)
	failed := loggedFailures(t, logs.String())
	w.mu.Lock()
	writes, wantFailed := w.n, w.failed
	w.mu.Unlock()
	if written+failed != workers*each || failed != wantFailed || wantFailed == 0 {
		t.Errorf("%d spans written and %d failures logged of %d writes (%d failed); want all %d spans, each written or counted",
			written, failed, writes, wantFailed, workers*each)
	}
}
