package endpointer

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// docs/client.md: an instance whose build failed for a passing reason is
// built again while discovery lists it, "after 1 s, then 2 s, 4 s… up to
// every 30 s". The schedule has no clock of its own to drive, so its two
// constants are pinned here, and the doubling is checked by a count that
// only a timer firing early could break: in the first 3.5 s after the
// first build there are at most three (0, 1 s, 3 s); without the
// doubling there would be four.
func TestGuard_RebuildsBackOffFromOneSecondDoublingToThirty(t *testing.T) {
	if rebuildFirst != time.Second || rebuildMax != 30*time.Second {
		t.Fatalf("rebuild spacing %s doubling to %s, docs/client.md says 1s doubling to 30s", rebuildFirst, rebuildMax)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := memory.New()
	defer reg.Close()
	src, err := reg.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var builds []time.Time
	e := New(src, func(string) (endpoint.Endpoint, io.Closer, error) {
		mu.Lock()
		builds = append(builds, time.Now())
		mu.Unlock()
		return nil, nil, errors.New("not listening yet") // a reason that may pass
	})
	defer e.Close()
	if err := reg.Register(ctx, inst(1)); err != nil {
		t.Fatal(err)
	}
	count := func() (int, time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if len(builds) == 0 {
			return 0, time.Time{}
		}
		return len(builds), builds[0]
	}
	// Eventually: the first build, and the rebuild after it.
	for n, _ := count(); n < 2; n, _ = count() {
		if ctx.Err() != nil {
			t.Fatalf("%d builds in 30 s, want the instance built again", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, first := count()
	time.Sleep(time.Until(first.Add(3500 * time.Millisecond)))
	mu.Lock()
	defer mu.Unlock()
	within := 0
	for _, b := range builds {
		if b.Sub(first) <= 3500*time.Millisecond {
			within++
		}
	}
	if within > 3 {
		t.Fatalf("%d builds within 3.5 s of the first (at %v), want at most 3: 1 s, then 2 s apart", within, builds)
	}
}
