package nginx_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/registry"
)

// A reload that failed leaves the new file on disk while nginx goes on
// with the set it had. When the set then goes back to that one before the
// retry (an instance that registered and left again), it is not "nothing
// to do": a hung master takes the SIGHUP it was sent once it runs again
// and loads the file on disk, and a restarted nginx reads it. Sync took
// the set it last reloaded for what nginx runs, skipped the write, and
// nginx served the withdrawn instance until the next change (audit e2, C1).
func TestSyncer_ASetBackToTheLoadedOneAfterAFailedReloadIsWrittenAndReloaded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startNginx(t, "user")
	url := p.URL() + "/user/"
	a, b := backend(t, "a"), backend(t, "b")
	r, err := nginx.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	s, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	set := func(insts ...registry.Instance) edge.Snapshot {
		return edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: insts}}}
	}
	if err := s.Apply(ctx, set(b)); err != nil {
		t.Fatal(err)
	}
	serves(t, url, "b")

	// The master hangs: the reload of {a} gets no new worker in time.
	if err := syscall.Kill(p.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(p.Pid(), syscall.SIGCONT)
		}
	}
	t.Cleanup(resume) // before startNginx's Stop: a stopped master ignores SIGQUIT
	hung, hcancel := context.WithTimeout(ctx, 2*time.Second)
	err = s.Apply(hung, set(a))
	hcancel()
	if err == nil {
		t.Fatal("reload of a stopped nginx master: no error")
	}
	// It runs again and handles the SIGHUP: nginx now runs the file on
	// disk, {a}.
	resume()
	serves(t, url, "a")

	// a leaves before the retry: the set is {b} again.
	if err := s.Apply(ctx, set(b)); err != nil {
		t.Fatalf("{b} again with nginx running: %v", err)
	}
	want, err := r.Render(set(b))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p.Upstreams()); string(got) != string(want) {
		t.Fatalf("after {b} was applied again the file on disk is still the failed set:\n%s", got)
	}
	serves(t, url, "b")
}

// A file the Syncer wrote itself is not the previous run's: when its
// reload failed (nginx down) and the service is still unlisted, the
// retry reported the file "kept" as the last good set from before the
// start and returned no error, so the watcher stopped retrying and the
// reload never came (audit e2, C2).
func TestSyncer_AFileItsOwnFailedReloadLeftIsNotKeptAsThePreviousRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startNginx(t, "user", "order")
	dir := strings.TrimSuffix(p.Upstreams(), "/upstreams.conf")
	p.Stop() // nginx is down: nginx -s reload fails
	if err := os.Remove(p.Upstreams()); err != nil {
		t.Fatal(err)
	}
	r, _ := nginx.NewRenderer()
	s, err := nginx.NewSyncer(p.Upstreams(), r, nginx.Command{Prefix: dir, Conf: dir + "/nginx.conf"})
	if err != nil {
		t.Fatal(err)
	}
	snap := edge.Snapshot{Services: []edge.Service{
		{Name: "user", Unlisted: true, Err: errors.New("registry down")},
		{Name: "order", Instances: []registry.Instance{backend(t, "o")}},
	}}
	if _, err := s.Sync(ctx, snap); err == nil {
		t.Fatal("reload with nginx down: no error")
	}
	if res, err := s.Sync(ctx, snap); res.Kept || err == nil {
		t.Fatalf("the retry: %+v, %v; want the reload tried again (and failing), not the file kept", res, err)
	}
}
