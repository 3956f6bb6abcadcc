package etcd

import (
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
)

// The connection monitor says "lost" and then "back" (and again for every
// failed reconnect); an instancer whose listing was waiting for etcd when
// it came back has that listing succeed, and finds the signals of the
// same recovery pending when its watch starts. The watch then ends at
// once — a re-list is right: the listing may have been answered just
// before a switch — but the instancer slept its failure backoff first,
// as for a watch that fails at once, and saw nothing meanwhile: up to
// the backoff maximum (5 s by default) blind right after every outage it
// read through. The re-list must follow at once.
//
// The Registry's backoff is long (20 s: a blind wait of 10–20 s); the
// client is the test's own, so gRPC reconnects on its default schedule
// (about a second after etcd is back), and the listing waits for it
// (the request timeout is a minute).
func TestInstancer_WatchesAtOnceAfterAListingThatWaitedForEtcd(t *testing.T) {
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cli := rawClient(t, srv)
	r, _ := newTestRegistry(t, srv, testPrefix(t), WithClient(cli),
		WithBackoff(20*time.Second, 20*time.Second), WithRequestTimeout(time.Minute))
	ctx := testCtx(t)
	a, b := testInstance(8080), testInstance(8081)
	putRecord(t, cli, r, a)
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	waitFor(t, 10*time.Second, "set {a}", func() bool { return hasExactly(in, a) })
	// A watch of more than a second: its end is not taken for a failure.
	time.Sleep(1500 * time.Millisecond)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the instancer to notice the outage", func() bool { return in.State().Err != nil })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the listing after the outage", func() bool { return hasExactly(in, a) })
	putRecord(t, rawClient(t, srv), r, b)
	// Seen within milliseconds when watched; 8 s is far below the 10 s
	// the shortest blind wait lasts, and far above any delivery.
	waitFor(t, 8*time.Second, "b, put right after the outage", func() bool { return hasExactly(in, a, b) })
}
