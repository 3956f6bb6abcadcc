package edge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A watcher started while etcd is down never hands out the service as an
// empty set: past the start wait it goes out Unlisted ("user=?"), with
// one warning, and the registry's set follows once etcd answers.
func TestWatcher_AServiceNeverListedGoesOutUnlistedNotEmpty(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := embedetcd.New(embedetcd.WithDir(t.TempDir())) // not started: the registry is down
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithInitialWait(500*time.Millisecond),
		etcd.WithDialTimeout(500*time.Millisecond), etcd.WithRequestTimeout(time.Second), etcd.WithTTL(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	var logs syncbuf.Buffer
	w, err := edge.NewWatcher(reg, []string{"user"}, edge.WithDebounce(20*time.Millisecond), edge.WithStartWait(2*time.Second),
		edge.WithLogger(log.NewLogfmtLogger(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	run(t, w, rec.apply)
	first := rec.waitFor(t, "a first snapshot past the start wait", func(edge.Snapshot) bool { return true })
	if u, _ := first.Service("user"); !u.Unlisted || u.Err == nil || len(u.Instances) != 0 || edge.Summary(first) != "user=?" {
		t.Fatalf("first snapshot with etcd down: %+v (%s); want user Unlisted with its error", u, edge.Summary(first))
	}
	if n := strings.Count(logs.String(), "registry has not listed the service yet"); n != 1 {
		t.Fatalf("%d warnings for the unlisted service; want 1:\n%s", n, logs.String())
	}

	time.Sleep(time.Second) // more of the instancer's failed attempts, each an error event
	down := len(rec.all())  // every snapshot so far was made while etcd was down
	for _, s := range rec.all()[:down] {
		if u, _ := s.Service("user"); !u.Unlisted || len(u.Instances) != 0 {
			t.Fatalf("a snapshot while etcd was down had user listed: %v", summaries(rec.all()))
		}
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Once etcd answers, its set goes out: empty at first, maybe (etcd
	// holds no record until Register below writes it: that is the
	// service's real state), then the instance.
	if err := reg.Register(ctx, inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	s := rec.waitFor(t, "user=1 once etcd answers", count("user", 1))
	if u, _ := s.Service("user"); u.Unlisted {
		t.Fatalf("user still Unlisted after a listing: %+v", u)
	}
}
