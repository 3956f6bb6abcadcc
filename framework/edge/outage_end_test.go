package edge_test

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// An outage while the watcher runs: every snapshot during it keeps the
// last set listed (with the error), never an empty one, and the end of
// the outage brings the registry's current set, here one instance fewer
// (its process ended during the outage, so its lease ran out after it).
func TestWatcher_TheEndOfAnOutageBringsTheCurrentSet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := embedetcd.New(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	open := func(ttl time.Duration) *etcd.Registry {
		reg, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(ttl),
			etcd.WithDialTimeout(500*time.Millisecond), etcd.WithRequestTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	reg := open(30 * time.Second)
	defer reg.Close()
	short := open(3 * time.Second) // the instance whose process ends during the outage
	defer short.Close()
	if err := reg.Register(ctx, inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	if err := short.Register(ctx, inst("user", 1002)); err != nil {
		t.Fatal(err)
	}
	w, err := edge.NewWatcher(reg, []string{"user"}, edge.WithDebounce(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	run(t, w, rec.apply)
	rec.waitFor(t, "user=2", count("user", 2))

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the outage's error", func(s edge.Snapshot) bool { u, _ := s.Service("user"); return u.Err != nil })
	short.Close() // its keepalives end: the lease expires once etcd runs again
	time.Sleep(2 * time.Second)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	s := rec.waitFor(t, "user=1 without error after the outage", func(s edge.Snapshot) bool {
		u, _ := s.Service("user")
		return u.Err == nil && len(u.Instances) == 1
	})
	if u, _ := s.Service("user"); u.Instances[0].ID != "user-1001" {
		t.Fatalf("after the outage: %+v; want user-1001", u.Instances)
	}
	for _, s := range rec.all() {
		if u, _ := s.Service("user"); len(u.Instances) == 0 {
			t.Fatalf("an empty set was applied: %v", summaries(rec.all()))
		}
	}
}
