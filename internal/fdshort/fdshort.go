// Package fdshort runs a test short of file descriptors, so that an
// accept fails with EMFILE as it does in a test process with many clients.
// The shortage is the whole process's, so the test runs in a child
// process: a copy of the test binary whose lowered limit and taken
// descriptors touch nothing of the tests around it. It needs Linux
// (/proc/self/fd) and a limit the test may lower; elsewhere it skips.
package fdshort

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// childEnv names the test a child process runs short of descriptors.
const childEnv = "WARREN_FDSHORT_CHILD"

// InParent runs the calling top-level test again in a child process, with
// a minute to finish, and reports true: the parent is done, the child's
// result is t's. In the child it reports false, and the test goes on to
// its body, where Take is safe to call.
func InParent(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		if _, err := os.ReadDir("/proc/self/fd"); err != nil {
			t.Skip("no /proc/self/fd:", err)
		}
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0],
		"-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
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
	return true
}

// Dial takes every descriptor but one (Take), dials addr with that one, so
// the accept of the connection finds none, and waits up to 3 s for
// failed (the loop's count of failed accepts) to grow. It only logs when
// the count does not: a loop that returns on the error (the bug these
// tests guard) counts nothing, and what must fail then is the test's check
// that the connection is served after release. The connection closes when
// the test ends; release is Take's.
func Dial(t testing.TB, addr string, failed func() int64) (c net.Conn, release func()) {
	t.Helper()
	release = Take(t, 1) // room for the dial's socket, none for the accept
	before := failed()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		release()
		t.Fatalf("dial with one descriptor free: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(3 * time.Second)
	for failed() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("short of descriptors, the accept failed %d time(s)", failed()-before)
	return c, release
}
