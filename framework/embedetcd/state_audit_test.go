package embedetcd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dirInUseBound is how long a Start on a dir in use may take to fail:
// it fails in lockDir, before etcd starts, so in milliseconds; the bound
// is for a loaded machine. Without the lock the Start waits in etcd's db
// lock forever, and the test says so after this, not after minutes.
const dirInUseBound = 15 * time.Second

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
	case <-time.After(dirInUseBound):
		// Say so first (the clean-up may take a while), then let the
		// stuck Start through (it then runs on the first's data) so the
		// test leaves nothing behind.
		t.Errorf("guarantee \"Start on a dir another Server runs on fails at once\": Start did not return within %s (start timeout 3s; it waits in etcd's db lock)", dirInUseBound)
		first.Close()
		firstClosed = true
		select {
		case <-started:
			second.Close()
		case <-time.After(60 * time.Second):
		}
		t.FailNow()
	}
	// The first is unharmed.
	if !first.Running() {
		t.Fatal("the first server stopped")
	}
}

// The Server's own lock alone keeps a second Server off the dir, before
// any db file exists (two Starts together on a new dir, the window the
// test below can only hit by chance): the lock is held here as a running
// Server holds it, and a Start on the dir fails at once saying so, where
// without it etcd would start on a dir another Server is starting on.
func TestServer_StartOnADirAnotherServerHoldsFailsBeforeEtcdStarts(t *testing.T) {
	dir := t.TempDir()
	held, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s, err := New(WithDir(dir), WithStartTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	started := make(chan error, 1)
	go func() { started <- s.Start() }()
	select {
	case err := <-started:
		if err == nil {
			t.Fatalf("guarantee \"Start on a dir another Server runs on fails at once\": etcd started on a dir whose %s another Server holds", lockFile)
		}
		if !strings.Contains(err.Error(), "in use by another embedded etcd") || !strings.Contains(err.Error(), dir) {
			t.Errorf("Start error does not say another Server holds the dir: %v", err)
		}
		if s.Running() {
			t.Error("Running after a failed Start")
		}
	case <-time.After(dirInUseBound):
		t.Fatalf("guarantee \"Start on a dir another Server runs on fails at once\": Start did not return within %s (start timeout 3s)", dirInUseBound)
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
	case <-time.After(dirInUseBound):
		t.Errorf("guarantee \"Start on a dir whose db file another etcd holds locked fails at once\": Start did not return within %s (start timeout 3s; it waits in etcd's db lock)", dirInUseBound)
		closeOther() // let the stuck Start through, so nothing is left behind
		select {
		case <-started:
			s.Close()
		case <-time.After(60 * time.Second):
		}
		t.FailNow()
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
	// The loser fails in its lock, before etcd starts: within the short
	// bound. The winner may take its start timeout.
	quick, deadline := time.After(dirInUseBound), time.After(60*time.Second)
	for returned := 0; returned < len(srvs); {
		select {
		case err := <-errs:
			returned++
			if err != nil {
				failed = append(failed, err)
			}
			continue
		case <-quick:
			if quick = nil; len(failed) > 0 {
				continue
			}
			t.Errorf("guarantee \"Start on a dir another Server runs on fails at once\": neither Start on the shared new dir failed within %s (one waits in etcd's db lock)", dirInUseBound)
		case <-deadline:
			t.Errorf("a Start on the shared new dir did not return within 60s (start timeout 5s)")
		}
		// Closing the running one lets the stuck Start through (whose
		// own Close waits for it: not on this goroutine); wait for both,
		// so a failed run leaves no etcd on the removed dir behind.
		closed := make(chan struct{}, len(srvs))
		for _, s := range srvs {
			go func() { s.Close(); closed <- struct{}{} }()
		}
		for range srvs {
			select {
			case <-closed:
			case <-time.After(60 * time.Second):
				t.Fatal("the Servers did not close within 60s")
			}
		}
		t.FailNow()
	}
	for _, s := range srvs {
		s.Close()
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "in use") {
		t.Fatalf("failed Starts: %v; want exactly one, saying the dir is in use", failed)
	}
}

// A failed accept (the process out of file descriptors for a moment, as
// a benchmark with many clients may be) does not end the front door: once
// descriptors are free again, new clients reach etcd. It used to return
// from its accept loop for good, leaving a listener nobody accepted on
// while Running said true: every later client hung until Stop.
func TestServer_FrontDoorOutlivesRunningOutOfDescriptors(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Use up every descriptor, with the limit lowered so that it takes a
	// few hundred files, then dial: the dial's socket is the last one, so
	// the door's accept fails with EMFILE.
	low := lim
	low.Cur = uint64(countOpenFDs(t)) + 200
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var hogs []*os.File
	var conns []net.Conn
	release := func() {
		for _, c := range conns {
			c.Close()
		}
		for _, f := range hogs {
			f.Close()
		}
		conns, hogs = nil, nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	defer release()
	// A descriptor freed elsewhere in the process (etcd's, the runtime's)
	// lets an accept through: try a few times, each with every descriptor
	// taken again but the dial's.
	failedAccept := false
	for attempt := 0; attempt < 5 && !failedAccept; attempt++ {
		for range 1000 {
			f, err := os.Open(os.DevNull)
			if err != nil {
				break
			}
			hogs = append(hogs, f)
		}
		if len(hogs) == 0 {
			break
		}
		hogs[len(hogs)-1].Close() // room for the dial's socket, none for the accept
		hogs = hogs[:len(hogs)-1]
		before := s.Accepted()
		c, err := net.DialTimeout("tcp", s.Endpoints()[0], 2*time.Second)
		if err != nil {
			continue
		}
		conns = append(conns, c)
		time.Sleep(300 * time.Millisecond) // for the door to meet the accept
		failedAccept = s.Accepted() == before
	}
	release()
	if !failedAccept {
		t.Skip("could not make the door's accept fail with EMFILE in 5 tries")
	}

	cli := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("a new client after the descriptors came back: %v (Running=%v)", err, s.Running())
	}
}

func countOpenFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// A Start that failed (its dir in use) leaves the Server as it was: its
// ports still held, nothing running, and a later Start — once the dir is
// free — serves the data the other etcd wrote. Stop and Close work in
// every phase and twice.
func TestServer_AFailedStartLeavesItReadyForTheNext(t *testing.T) {
	dir := t.TempDir()
	first, err := Start(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := newClient(t, first).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}

	s, err := New(WithDir(dir), WithStartTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		if err := s.Stop(); err != nil { // before any Start, twice
			t.Fatalf("Stop before Start: %v", err)
		}
	}
	if err := s.Start(); err == nil {
		t.Fatal("started on a dir in use")
	}
	if s.Running() {
		t.Fatal("Running after a failed Start")
	}
	for _, addr := range []string{s.front, s.client, s.peer} {
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			t.Fatalf("after a failed Start %s could be bound by someone else", addr)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop after a failed Start: %v", err)
	}

	if err := first.Close(); err != nil { // the dir is free
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start once the dir is free: %v", err)
	}
	cli := newClient(t, s)
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("Get on the freed dir = %v, %v", resp, err)
	}
	for range 2 {
		if err := s.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close after Stop: %v", err)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop after Close: %v", err)
	}
	if err := s.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
}

// A process killed (SIGKILL) while its etcd ran on a dir leaves no lock
// behind: the next Server on the dir starts, with the data written before
// the kill. (The kernel drops flocks with the process; the lock file that
// stays is not a lock.)
func TestServer_ADirLeftByAKilledProcessStarts(t *testing.T) {
	if os.Getenv("EMBEDETCD_HELPER_DIR") != "" {
		t.Skip("in the helper process")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelper_RunEtcdUntilKilled$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EMBEDETCD_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line := make(chan string, 1)
	go func() { // owned by the test: ends when the helper's stdout closes
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "written ") {
				line <- sc.Text()
			}
		}
		close(line)
	}()
	select {
	case _, ok := <-line:
		if !ok {
			t.Fatal("the helper exited before writing")
		}
	case <-ctx.Done():
		t.Fatal("the helper did not write within 60s")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	s, err := New(WithDir(dir), WithStartTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(); err != nil {
		t.Fatalf("Start on the dir a killed process left: %v", err)
	}
	resp, err := newClient(t, s).Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("Get after the kill = %v, %v", resp, err)
	}
}

// TestHelper_RunEtcdUntilKilled is the process the test above kills: it
// runs etcd on EMBEDETCD_HELPER_DIR, writes k=v, says so, and waits.
func TestHelper_RunEtcdUntilKilled(t *testing.T) {
	dir := os.Getenv("EMBEDETCD_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := Start(WithDir(dir), WithFsync())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := newClient(t, s).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	fmt.Println("written k")
	time.Sleep(60 * time.Second) // killed long before
}
