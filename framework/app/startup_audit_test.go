package app

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
)

// dying is a transport whose Serve stops on its own, with an error, when
// die is closed: a listener that broke under a running server.
type dying struct {
	transport.Server
	die chan struct{}
}

func (d *dying) Serve() error {
	served := make(chan error, 1)
	go func() { served <- d.Server.Serve() }() // owned by Serve: ends when the inner server is closed below or shut down
	select {
	case err := <-served:
		return err
	case <-d.die:
		_ = d.Server.Close()
		<-served
		return errors.New("accept: listener broke")
	}
}

// waitJournal waits up to 20 s for entry in j.
func waitJournal(t *testing.T, j *journal, entry string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for indexOf(j.list(), entry) < 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20s: %v", entry, j.list())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A transport that stops on its own while the registration is still
// being retried against a registry that is down ends the start-up with
// ErrServe: the start-up did not watch the transports, so Run waited for
// the registry as long as it took (by default without a bound), neither
// serving on that transport nor exiting, and once the registry was back
// published an instance one of whose endpoints was dead.
func TestRun_ATransportThatStopsDuringRegistrationEndsTheStartUp(t *testing.T) {
	srv, reg := etcdRegistry(t, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := srv.Stop(); err != nil { // Register retries until etcd is back
		t.Fatal(err)
	}
	j := &journal{}
	echo := &dying{Server: transporttest.NewLineEcho("127.0.0.1:0"), die: make(chan struct{})}
	a, err := New("orders", okHandler(), reg, testOptions(j, WithServer(echo))...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitJournal(t, j, "phase:selfcheck") // both transports answered; the registration is being tried
	close(echo.die)
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run still in its start-up 20s after its echo transport stopped, waiting for a registry that is down")
	}
	if !errors.Is(err, ErrServe) || !strings.Contains(err.Error(), "echo") || !strings.Contains(err.Error(), "listener broke") {
		t.Fatalf("Run = %v, want ErrServe naming the echo transport and why it stopped", err)
	}
	if errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v: no signal and no cancel came, the transport failed", err)
	}
	if indexOf(j.list(), "phase:release") < 0 {
		t.Fatalf("the failed start-up did not release: %v", j.list())
	}
	if got := j.phaseLevel("register"); got != "error" { // the failed phase's line
		t.Fatalf("register line at level %q, want error: the registration must not go through after a transport stopped", got)
	}
	// etcd back: the start-up that failed left no record behind.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if n := etcdRecords(t, srv, "orders")(); n != 0 {
		t.Fatalf("etcd holds %d record(s) of the instance whose start-up failed", n)
	}
}

// A start-up that failed on its own (here a self-check of an address that
// refuses) is undone before Run returns; a signal that came during that
// undoing (a release held by a closer) relabelled the failure as
// ErrInterrupted ("start-up interrupted (terminated): self-check
// failed…"), as though the signal had cut it short. What ended the
// start-up is what Run says.
func TestRun_ASignalDuringTheUndoingDoesNotRelabelAFailedStartUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String() // refuses connections once closed
	ln.Close()
	j := &journal{}
	out := &lines{}
	release := make(chan struct{})
	var released bool
	defer func() {
		if !released {
			close(release)
		}
	}()
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithLogger(tee{j, out}), WithSignals(true),
		WithAdvertise(dead), WithSelfCheckTimeout(300*time.Millisecond), WithCloser(blockingCloser{j, release}))...)
	if err != nil {
		t.Fatal(err)
	}
	a.opts.releaseTimeout = time.Minute // the closer, not the bound, ends the release here
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	waitJournal(t, j, "closer:entered") // the self-check failed; the start-up is being undone
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	// A repeat is logged only once the first has been taken: then the
	// signal is known to Run before the undoing ends. (Another signal: two
	// of one kind still pending are delivered once.)
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	waitLogged(t, out, "taken as the same request")
	close(release)
	released = true
	err = wait(t, done)
	if !errors.Is(err, ErrSelfCheck) || errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want the self-check's failure, not ErrInterrupted: the signal came after it", err)
	}
}
