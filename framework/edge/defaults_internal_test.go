package edge

import (
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// The defaults the options' docs state: debounce 200 ms, max delay 1 s,
// start wait 10 s, retry 5 s.
func TestNewWatcher_DocumentedDefaults(t *testing.T) {
	srv := memory.NewServer()
	w, err := NewWatcher(srv.Registry(), []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	got := [4]time.Duration{w.o.debounce, w.o.maxDelay, w.o.startWait, w.o.retry}
	if want := [4]time.Duration{200 * time.Millisecond, time.Second, 10 * time.Second, 5 * time.Second}; got != want {
		t.Fatalf("debounce, max delay, start wait, retry = %v; documented %v", got, want)
	}
}
