package nginx_test

import (
	"context"
	"os"
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
