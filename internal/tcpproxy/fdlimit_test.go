package tcpproxy

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fdChildEnv marks the process that runs out of descriptors: a copy of
// the test binary, so the lowered limit and the descriptors it takes touch
// nothing of the tests around it.
const fdChildEnv = "TCPPROXY_FD_CHILD"

// An accept that fails because the process is out of file descriptors
// (EMFILE) does not end the proxy: once descriptors are free again, the
// connection that waited and a new one both get through. The accept loop
// used to return on any error, leaving a port nobody accepted on, so a
// fault test failed later with clients hanging on the proxy.
func TestProxy_KeepsAcceptingAfterRunningOutOfDescriptors(t *testing.T) {
	if os.Getenv(fdChildEnv) == "1" {
		runOutOfDescriptors(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0],
		"-test.run=^TestProxy_KeepsAcceptingAfterRunningOutOfDescriptors$", "-test.v", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("the child did not end within 90 s:\n%s", out)
	case err != nil:
		t.Fatalf("in the child (out of descriptors): %v\n%s", err, out)
	case strings.Contains(string(out), "--- SKIP"):
		t.Skipf("the child skipped:\n%s", out)
	case !strings.Contains(string(out), "--- PASS"):
		t.Fatalf("the child ran no test:\n%s", out)
	}
	t.Logf("the child:\n%s", out)
}

// runOutOfDescriptors is the child: it takes every descriptor the lowered
// limit leaves but one, dials the proxy with that one, so the proxy's
// accept has none, waits until the accept failed, and frees them. Then it
// runs short again and closes the proxy while its accepts fail: Close
// ends the retrying loop at once.
func runOutOfDescriptors(t *testing.T) {
	target := echo(t)
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	waiting, release := runShort(t, p)
	defer release()
	defer waiting.Close()
	release()
	if got, err := roundTrip(waiting, "waited"); err != nil || got != "waited" {
		t.Fatalf("the connection that waited out the shortage: %q, %v (accept errors: %d)", got, err, p.acceptErrors.Load())
	}
	fresh := dial(t, p)
	if got, err := roundTrip(fresh, "fresh"); err != nil || got != "fresh" {
		t.Fatalf("a new connection after the shortage: %q, %v", got, err)
	}

	waiting2, release2 := runShort(t, p)
	defer release2()
	defer waiting2.Close()
	closed := make(chan struct{})
	go func() { // ends when Close returns (or the child's -test.timeout)
		defer close(closed)
		p.Close()
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s while accepts failed")
	}
}

// runShort lowers the descriptor limit to a few dozen above what is
// open, takes every descriptor but one, dials p with it and waits until
// p's accept has failed once more. release puts the limit back before it
// frees the descriptors, so all are there at once; it may be called
// twice.
func runShort(t *testing.T, p *Proxy) (net.Conn, func()) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(len(ents)) + 64 // a few dozen files to take, not thousands
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip("cannot lower RLIMIT_NOFILE:", err)
	}
	var hogs []*os.File
	release := func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
		for _, f := range hogs {
			f.Close() // a second Close of a file is harmless
		}
	}
	for range 1000 { // bounded: the limit is a few dozen above what is open
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				release()
				t.Fatalf("taking descriptors: %v", err)
			}
			break
		}
		hogs = append(hogs, f)
	}
	if len(hogs) == 0 {
		t.Fatal("took no descriptor")
	}
	hogs[len(hogs)-1].Close() // room for the dial's socket, none for the accept
	hogs = hogs[:len(hogs)-1]
	before := p.acceptErrors.Load()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		release()
		t.Fatalf("dial with one descriptor free: %v", err)
	}
	// The hogs stopped on EMFILE, so the accept of this connection fails.
	// Wait for the proxy to count that, but never skip for want of it: a
	// loop that returns on the error (the old one) counts nothing, and it
	// is the round trip after the release that must fail then.
	deadline := time.Now().Add(3 * time.Second)
	for p.acceptErrors.Load() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("with %d descriptors taken, the proxy counted %d failed accepts", len(hogs), p.acceptErrors.Load()-before)
	return c, release
}
