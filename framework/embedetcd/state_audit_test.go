package embedetcd

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// A second Server on a data dir a running etcd holds (a test that left one
// running, the same dir given twice) fails its Start saying the dir is in
// use, within its start timeout: etcd alone waits for the db file's lock
// forever, inside Start, holding the Server's lock, so Close hung too.
func TestServer_StartOnADirInUseFailsSayingSo(t *testing.T) {
	dir := t.TempDir()
	first, err := Start(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	firstClosed := false
	defer func() {
		if !firstClosed {
			first.Close()
		}
	}()
	second, err := New(WithDir(dir), WithStartTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- second.Start() }()
	select {
	case err := <-started:
		if err == nil {
			t.Fatal("a second etcd started on a data dir the first one holds")
		}
		if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), dir) {
			t.Errorf("Start error does not say the dir is in use: %v", err)
		}
		if second.Running() {
			t.Error("Running after a failed Start")
		}
		if err := second.Close(); err != nil {
			t.Errorf("Close after the failed Start: %v", err)
		}
	case <-time.After(60 * time.Second):
		// Let the stuck Start through (it then runs on the first's data)
		// so the test leaves nothing behind, and fail.
		first.Close()
		firstClosed = true
		select {
		case <-started:
			second.Close()
		case <-time.After(60 * time.Second):
		}
		t.Fatal("Start on a data dir in use did not return within 60s (start timeout 3s)")
	}
	// The first is unharmed.
	if !first.Running() {
		t.Fatal("the first server stopped")
	}
}

// An etcd that is not a Server (started with embed directly, as a daemon
// would be) holds only its db file's lock: a Server on its dir fails its
// Start saying the dir is in use, instead of waiting for that lock forever.
func TestServer_StartOnADirAnotherEtcdRunsOnFailsSayingSo(t *testing.T) {
	other, err := New() // for its ports and config only; never started
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cfg := other.config()
	other.heldOwn.Release()
	e, err := startWithRetry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var stopOther sync.Once // embed.Etcd.Close panics the second time
	closeOther := func() {
		stopOther.Do(func() {
			e.Close()
			<-e.Server.StopNotify()
		})
	}
	defer closeOther()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("the other etcd was not ready within 30s")
	}
	s, err := New(WithDir(cfg.Dir), WithStartTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- s.Start() }()
	select {
	case err := <-started:
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("Start on the other etcd's dir = %v, want an error saying it is in use", err)
		}
		s.Close()
	case <-time.After(60 * time.Second):
		closeOther() // let the stuck Start through, so nothing is left behind
		select {
		case <-started:
			s.Close()
		case <-time.After(60 * time.Second):
		}
		t.Fatal("Start on a dir another etcd runs on did not return within 60s (start timeout 3s)")
	}
}

// Two Servers started together on one new data dir (no db file yet, so
// no etcd lock to find): one runs, the other fails saying the dir is in
// use; neither waits forever.
func TestServer_TwoStartsTogetherOnANewDirOneFails(t *testing.T) {
	dir := t.TempDir()
	var srvs [2]*Server
	for i := range srvs {
		s, err := New(WithDir(dir), WithStartTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		srvs[i] = s
	}
	errs := make(chan error, len(srvs))
	for _, s := range srvs {
		go func() { errs <- s.Start() }()
	}
	var failed []error
	deadline := time.After(60 * time.Second)
	for range srvs {
		select {
		case err := <-errs:
			if err != nil {
				failed = append(failed, err)
			}
		case <-deadline:
			// Closing the running one lets the stuck Start through (whose
			// own Close waits for it: not on this goroutine).
			for _, s := range srvs {
				go s.Close()
			}
			t.Fatal("a Start on the shared new dir did not return within 60s (start timeout 5s)")
		}
	}
	for _, s := range srvs {
		s.Close()
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "in use") {
		t.Fatalf("failed Starts: %v; want exactly one, saying the dir is in use", failed)
	}
}
