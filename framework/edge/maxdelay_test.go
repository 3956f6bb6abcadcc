package edge_test

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// WithMaxDelay: a registry that never goes quiet still reaches the proxy.
// Changes come every 100 ms, well inside the 2 s debounce, for up to 30 s;
// a set must be applied while they keep coming (about 2 s after the
// first). Without the bound the debounce would wait for a quiet that never
// comes.
func TestWatcher_ChangesThatNeverStopStillGoOutAfterMaxDelay(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	w, err := edge.NewWatcher(srv.Registry(), []string{"user"}, edge.WithDebounce(2*time.Second), edge.WithMaxDelay(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	run(t, w, rec.apply)
	rec.waitFor(t, "the empty start", count("user", 0))
	ctx := context.Background()
	nonEmpty := func() bool {
		for _, s := range rec.all() {
			if u, ok := s.Service("user"); ok && len(u.Instances) > 0 {
				return true
			}
		}
		return false
	}
	for i := 0; i < 300 && !nonEmpty(); i++ {
		if err := reg.Register(ctx, inst("user", 2000+i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !nonEmpty() {
		t.Fatalf("no set applied during 30 s of changes every 100 ms; applied: %v", summaries(rec.all()))
	}
}
