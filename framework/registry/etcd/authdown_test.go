package etcd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/goroutines"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// startAuthEtcd starts an etcd of the test's own with auth on (enableAuth:
// user "svc", password "svc-pw", allowed under /prefix/) and returns it
// with that prefix.
func startAuthEtcd(t *testing.T, ctx context.Context) (*embedetcd.Server, string) {
	t.Helper()
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()), embedetcd.WithConfig(func(c *embed.Config) {
		c.BcryptCost = 4 // bcrypt.MinCost: the default takes seconds per password under -race
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	admin, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	prefix := testPrefix(t)
	enableAuth(t, ctx, admin, prefix)
	return srv, prefix
}

// authOptions are a Registry's options on srv with the given password.
func authOptions(srv *embedetcd.Server, prefix, password string, logs *syncbuf.Buffer) []Option {
	return []Option{
		WithEndpoints(srv.Endpoints()...),
		WithPrefix(prefix),
		WithAuth("svc", password),
		WithTTL(testTTL),
		WithBackoff(50*time.Millisecond, 500*time.Millisecond),
		WithRequestTimeout(2 * time.Second),
		WithInitialWait(500 * time.Millisecond),
		WithLogger(log.NewLogfmtLogger(logs)),
	}
}

// own are the frames of a Registry's loops, to check that Close ends them.
var own = []string{"framework/registry/etcd.(*", "framework/registry/keeper.(*"}

// TestRegistry_AuthStartsWhileEtcdIsDown: with credentials, New does not
// depend on etcd. Made while etcd (with auth on) refuses connections, it
// returns at once; an instancer reports the outage and a registration
// keeps trying; once etcd serves, the client authenticates, the
// registration is written and discovered. Close ends every goroutine and
// is idempotent. (clientv3.New with a user name authenticates before it
// returns, so New used to fail after the dial timeout.)
func TestRegistry_AuthStartsWhileEtcdIsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	srv, prefix := startAuthEtcd(t, ctx)
	if err := srv.Stop(); err != nil { // its ports are held: they refuse connections
		t.Fatal(err)
	}
	before := len(goroutines.Running(own...))

	const dial = 3 * time.Second
	logs := &syncbuf.Buffer{}
	start := time.Now()
	r, err := New(ctx, append(authOptions(srv, prefix, "svc-pw", logs), WithDialTimeout(dial))...)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("New with credentials while etcd is down: %v (after %s)", err, took)
	}
	defer r.Close()
	defer func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", logs)
		}
	}()
	if took >= dial {
		t.Fatalf("New took %s: it waited for etcd (dial timeout %s)", took, dial)
	}

	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatalf("Instancer while etcd is down: %v", err)
	}
	defer in.Stop()
	if ev := in.State(); ev.Err == nil || len(ev.Instances) != 0 {
		t.Fatalf("instancer while etcd is down: %d instances, err %v; want none and an error", len(ev.Instances), ev.Err)
	}

	// A Register that runs out of time says so: not a refusal.
	inst := testInstance(4343)
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	err = r.Register(sctx, inst)
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Register with a 1 s ctx while etcd is down: %v; want its deadline", err)
	}
	t.Logf("Register with a short ctx: %v", err)

	// One that may wait keeps trying until etcd serves.
	var regErr error
	regDone := make(chan struct{})
	go func() { defer close(regDone); regErr = r.Register(ctx, inst) }()
	defer func() { // the goroutine ends with ctx at the latest
		cancel()
		<-regDone
	}()
	waitFor(t, 30*time.Second, "the registrar to report a failed attempt", func() bool {
		s := r.Status()
		return s.State == registry.StateRetrying && strings.Contains(s.LastError, "not yet authenticated")
	})
	select {
	case <-regDone:
		t.Fatalf("Register returned while etcd is down: %v", regErr)
	default:
	}
	t.Logf("status while etcd is down: %+v", r.Status())

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-regDone:
		if regErr != nil {
			t.Fatalf("Register once etcd serves: %v", regErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Register did not return within 60 s of etcd serving")
	}
	if s := r.Status(); s.State != registry.StateRegistered {
		t.Fatalf("status after Register: %+v", s)
	}
	waitFor(t, 30*time.Second, "the instance in discovery", func() bool { return hasExactly(in, inst) })
	if !strings.Contains(logs.String(), "client authenticated") {
		t.Errorf("no log line of the client authenticating")
	}

	// Close revokes our lease (it needs the authenticated client), ends
	// every goroutine, and may be called again.
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	goroutines.WaitAtMost(t, "the Registry's goroutines after Close", before, 10*time.Second, own...)
}

// TestRegistry_AuthCloseWhileEtcdIsDown: Close while the client is still
// trying to authenticate ends the attempt in flight instead of waiting out
// the dial timeout, fails the waiting Register, and leaves no goroutine.
func TestRegistry_AuthCloseWhileEtcdIsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := embedetcd.New() // never started: its ports refuse connections
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	before := len(goroutines.Running(own...))

	const dial = 30 * time.Second
	logs := &syncbuf.Buffer{}
	r, err := New(ctx, append(authOptions(srv, testPrefix(t), "svc-pw", logs), WithDialTimeout(dial))...)
	if err != nil {
		t.Fatalf("New with credentials while etcd is down: %v", err)
	}
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	var regErr error
	regDone := make(chan struct{})
	go func() { defer close(regDone); regErr = r.Register(ctx, testInstance(4344)) }()
	defer func() { // the goroutine ends with ctx at the latest
		cancel()
		<-regDone
	}()
	waitFor(t, 30*time.Second, "the registrar to report a failed attempt", func() bool {
		return r.Status().State == registry.StateRetrying
	})

	start := time.Now()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took >= dial/2 {
		t.Fatalf("Close took %s: it waited for the authentication attempt (dial timeout %s)", took, dial)
	}
	select {
	case <-regDone:
		if regErr == nil {
			t.Fatal("Register succeeded with etcd down")
		}
		t.Logf("Register cut by Close: %v", regErr)
	case <-time.After(dial / 2):
		t.Fatal("Register still waiting after Close")
	}
	if err := r.Register(ctx, testInstance(4345)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close: %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	goroutines.WaitAtMost(t, "the Registry's goroutines after Close", before, 10*time.Second, own...)
}

// TestRegistry_AuthWrongPasswordFailsAtOnce: with etcd up, a wrong
// password is final. Register returns etcd's refusal before its ctx ends,
// at once again when called again, and an instancer publishes it.
func TestRegistry_AuthWrongPasswordFailsAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, prefix := startAuthEtcd(t, ctx)
	before := len(goroutines.Running(own...))

	logs := &syncbuf.Buffer{}
	r, err := New(ctx, append(authOptions(srv, prefix, "nope", logs), WithDialTimeout(15*time.Second))...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer r.Close()
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	for i := range 2 {
		err = r.Register(rctx, testInstance(4346))
		if !errors.Is(err, rpctypes.ErrAuthFailed) || rctx.Err() != nil {
			t.Fatalf("Register %d with a wrong password: %v (ctx: %v); want etcd's refusal before the ctx ends", i, err, rctx.Err())
		}
	}
	t.Logf("Register with a wrong password: %v", err)
	if strings.Contains(err.Error(), "nope") || strings.Contains(logs.String(), "nope") {
		t.Errorf("the password shows in an error or the log")
	}
	if s := r.Status(); s.State == registry.StateRegistered {
		t.Errorf("status: %+v", s)
	}
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	if ev := in.State(); !errors.Is(ev.Err, rpctypes.ErrAuthFailed) {
		t.Fatalf("instancer event error %v; want etcd's refusal", ev.Err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	goroutines.WaitAtMost(t, "the Registry's goroutines after Close", before, 10*time.Second, own...)
}
