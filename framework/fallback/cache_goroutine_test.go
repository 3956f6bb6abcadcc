package fallback

import (
	"runtime"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/goroutines"
)

// A Cache runs no goroutine of its own: it has no Close, so one it
// started (hashicorp's expirable LRU sweeps expired entries on a ticker
// that never stops, and the goroutine keeps the cache and its answers
// reachable) would outlive it — a Cached fallback made per client
// rebuilt on a config reload, or per request, leaked a goroutine and
// every answer it held, each time.
func TestCache_RunsNoGoroutine(t *testing.T) {
	const frame = "golang-lru/v2/expirable.NewLRU"
	before := len(goroutines.Running(frame))
	for range 20 {
		c := NewCache[string, []byte](100, time.Minute)
		c.Put("k", make([]byte, 1<<10))
	}
	runtime.GC()
	goroutines.WaitAtMost(t, "caches' sweepers after the caches were dropped", before, 5*time.Second, frame)
}
