package zookeeper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/proc"
	"github.com/warren-mesh/warren/internal/zk"
)

// rawConn is a plain client of addr, playing the operator.
func rawConn(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(zkLogger{nopLogger{}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type nopLogger struct{}

func (nopLogger) Log(...any) error { return nil }

// An operator deletes the znode by hand: the registrar's watch on its own
// znode fires, and it writes the record again, under its own session, at
// once (well within 5 s on a loaded machine), counting a re-registration.
func TestZnodeDeletedByHand_RecreatedAtOnce(t *testing.T) {
	root := testRoot(t)
	r, _ := newTestRegistry(t, shared.Addr(), root)
	inst := testInstance("hand", 1)
	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	op := rawConn(t, shared.Addr())
	p := r.nodePath(inst)
	_, stat, err := op.Get(p)
	if err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := op.Delete(p, stat.Version); err != nil {
		t.Fatal(err)
	}
	var back time.Duration
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ok, st, _ := op.Exists(p); ok && st.EphemeralOwner == r.conn.SessionID() {
			back = time.Since(deleted)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not re-created within 30s of its deletion", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The count follows the write (the registrar reports after ZooKeeper
	// answered), so wait for it rather than read it once.
	for deadline := time.Now().Add(30 * time.Second); r.Status().Reregistrations == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.Status(); st.Reregistrations != 1 || st.State != registry.StateRegistered {
		t.Errorf("Status = %+v, want registered with 1 re-registration", st)
	}
	t.Logf("deleted by hand: re-created %s later", back.Round(time.Millisecond))
	if back > 5*time.Second {
		t.Errorf("re-created after %s; want at once (≤ 5s)", back)
	}
}

// A partition longer than the session timeout: ZooKeeper expires the
// registrar's session and with it the ephemeral znode, so other clients
// stop seeing the instance; the registrar says retrying on Status (it
// cannot be told, so it presumes expiry after one session timeout without
// contact); once the partition heals it gets a new session and writes the
// znode again, and every client sees the instance again.
func TestSessionExpiry_ZnodeRecreatedInTheNewSession(t *testing.T) {
	srv := startServer(t)
	root := testRoot(t)
	r, _ := newTestRegistry(t, srv.Addr(), root)
	// The watcher bypasses the proxy: only the registrar is cut off.
	other, _ := newTestRegistry(t, srv.DirectAddr(), root)
	w := watch(t, other, "exp")
	inst := testInstance("exp", 1)
	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	w.await(t, 30*time.Second, "the instance", noErr(exactly(inst.ID)))
	oldSession := r.conn.SessionID()

	srv.Cut()
	cut := time.Now()
	w.await(t, 30*time.Second, "the instance gone once its session expired", noErr(exactly()))
	gone := time.Since(cut)
	awaitState(t, r, registry.StateRetrying, 30*time.Second)
	srv.Heal()
	healed := time.Now()
	w.await(t, 30*time.Second, "the instance back after the partition healed", noErr(exactly(inst.ID)))
	back := time.Since(healed)
	awaitState(t, r, registry.StateRegistered, 30*time.Second)
	if r.conn.SessionID() == oldSession {
		t.Errorf("same session %x after the partition; the test did not expire it", oldSession)
	}
	if n := r.Status().Reregistrations; n < 1 {
		t.Errorf("Reregistrations = %d, want ≥ 1", n)
	}
	t.Logf("partition: znode gone %s after the cut (session %s), back %s after it healed; status %+v",
		gone.Round(time.Millisecond), testSession, back.Round(time.Millisecond), r.Status())
}

// ZooKeeper is down for longer than the session timeout and comes back on
// its data: the registrar says retrying meanwhile, and registered after,
// with the instance visible to a fresh client.
func TestServerDownLongerThanSession_RegisteredAgain(t *testing.T) {
	srv := startServer(t)
	root := testRoot(t)
	r, _ := newTestRegistry(t, srv.Addr(), root)
	inst := testInstance("down", 1)
	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// Held while down, so no other process takes it before the restart.
	if ln, err := net.Listen("tcp", srv.DirectAddr()); err == nil {
		ln.Close()
		t.Fatalf("the stopped server's port %s could be bound by someone else", srv.DirectAddr())
	}
	awaitState(t, r, registry.StateRetrying, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	awaitState(t, r, registry.StateRegistered, 60*time.Second)
	fresh, _ := newTestRegistry(t, srv.Addr(), root)
	w := watch(t, fresh, "down")
	w.await(t, 30*time.Second, "the instance after the restart", noErr(exactly(inst.ID)))
	if !strings.Contains(r.Status().LastError, "session") {
		t.Errorf("LastError %q does not say why", r.Status().LastError)
	}
}

// A client started while ZooKeeper is down: New returns at once, the
// instancer returns within its initial wait with an error event, Register
// keeps trying until its ctx ends; once ZooKeeper serves, the instancer
// fills and Register succeeds.
func TestClientStartedWhileServerDown(t *testing.T) {
	srv := startServer(t)
	root := testRoot(t)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, _ := newTestRegistry(t, srv.Addr(), root, WithInitialWait(2*time.Second))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("New took %s with ZooKeeper down; want no wait", d)
	}
	start = time.Now()
	w := watch(t, r, "early")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Instancer took %s; want about the initial wait (2s)", d)
	}
	w.await(t, 30*time.Second, "an error event while ZooKeeper is down", func(ev sd.Event) bool { return ev.Err != nil })
	inst := testInstance("early", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := r.Register(ctx, inst)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Register with ZooKeeper down: %v, want a deadline error", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	if err := srv.Start(sctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctxFor(t, 60*time.Second), inst); err != nil {
		t.Fatalf("Register once ZooKeeper serves: %v", err)
	}
	w.await(t, 60*time.Second, "the instance once ZooKeeper serves", noErr(exactly(inst.ID)))
}

// A registrar process killed with SIGKILL (no Close, no goodbye) leaves
// discovery when ZooKeeper expires its session: within the session timeout
// + 1 s of the kill.
func TestSIGKILLedRegistrar_GoneWithinSessionTimeoutPlus1s(t *testing.T) {
	root := testRoot(t)
	other, _ := newTestRegistry(t, shared.Addr(), root)
	w := watch(t, other, "killed")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		helperEnv+"=1", "ZK_ADDR="+shared.Addr(), "ZK_ROOT="+root, "ZK_SESSION="+testSession.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	// Forked on a thread kept for the child's life: the kernel's
	// parent-death signal follows the forking thread, and the ZooKeeper
	// servers' internal/proc goroutines end theirs when a server stops.
	p, err := proc.Run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if !strings.HasPrefix(s, "registered") {
			t.Fatalf("registrar process said %q", s)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("registrar process did not register within 60s")
	}
	w.await(t, 30*time.Second, "the process's instance", noErr(exactly("killed-1")))
	killed := time.Now()
	p.Kill()
	at := w.await(t, 30*time.Second, "the killed process's instance gone", noErr(exactly()))
	took := at.Sub(killed)
	t.Logf("SIGKILLed registrar gone from discovery %s after the kill (session timeout %s)", took.Round(time.Millisecond), testSession)
	if took > testSession+time.Second {
		t.Errorf("gone after %s; want ≤ session timeout + 1s = %s", took.Round(time.Millisecond), testSession+time.Second)
	}
}

// registrarProcess is the test binary run as a registrar (helperEnv set):
// it registers killed-1, says so on stdout and waits to be killed (at
// most 2 minutes).
func registrarProcess() int {
	timeout, err := time.ParseDuration(os.Getenv("ZK_SESSION"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := New(context.Background(), WithServers(os.Getenv("ZK_ADDR")), WithRoot(os.Getenv("ZK_ROOT")), WithSessionTimeout(timeout))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Register(ctx, testInstance("killed", 1)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("registered")
	time.Sleep(2 * time.Minute)
	return 0
}

// helperEnv, when set, makes the test binary a registrar process
// (registrarProcess) instead of running tests.
const helperEnv = "WARREN_ZK_REGISTRAR"
