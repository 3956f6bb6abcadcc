package faults

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The gRPC scenarios run grpcecho processes (testdata/grpcecho: an App
// serving Echo over gRPC, registered in a real embedded etcd) and drive
// idempotent calls at 200/s through grpcclient, Warren's gRPC client.

var (
	grpcEchoOnce sync.Once
	grpcEchoBin  string
	grpcEchoErr  error
)

func buildGRPCEcho(t *testing.T) string {
	t.Helper()
	grpcEchoOnce.Do(func() {
		grpcEchoBin = filepath.Join(binDir, "grpcecho")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", grpcEchoBin, "./test/faults/testdata/grpcecho")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			grpcEchoErr = errors.New(err.Error() + ": " + string(out))
		}
	})
	if grpcEchoErr != nil {
		t.Fatalf("build grpcecho: %v", grpcEchoErr)
	}
	return grpcEchoBin
}

type grpcMesh struct {
	t      *testing.T
	bin    string
	etcd   *embedetcd.Server
	prefix string
}

type echoProc struct {
	id   string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan error
}

func startGRPCMesh(t *testing.T) *grpcMesh {
	t.Helper()
	bin := buildGRPCEcho(t)
	s, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &grpcMesh{t: t, bin: bin, etcd: s, prefix: "grpcfaults"}
}

func (m *grpcMesh) start(id string) *echoProc {
	m.t.Helper()
	p := &echoProc{id: id, out: &syncbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(m.bin, "-etcd", m.etcd.Endpoints()[0], "-prefix", m.prefix, "-id", id,
		"-ttl", ttl.String(), "-grace", grace.String())
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }() // ends with the process, which Cleanup ensures
	m.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT) // a SIGSTOPped one must run to die
		_ = p.cmd.Process.Kill()
		<-p.done
		if m.t.Failed() {
			m.t.Logf("%s output:\n%s", id, p.out)
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *echoProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for Cleanup
		if err != nil {
			t.Errorf("%s exited with %v:\n%s", p.id, err, p.out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not exit within 60s of SIGTERM", p.id)
	}
}

// client returns a grpcclient over the mesh's etcd with the load's
// per-attempt timeout, and the idempotent call the load makes.
func (m *grpcMesh) client() (*grpcclient.Client, Call) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(m.etcd.Endpoints()...), etcd.WithPrefix(m.prefix))
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { reg.Close() })
	c, err := grpcclient.New(ctx, reg, "gecho", grpcclient.WithClientOptions(client.WithRetry(retry.WithPerAttemptTimeout(perAttempt))))
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { c.Close() })
	ep := grpcclient.NewEndpoint(c, grpctest.SayMethod,
		func(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil },
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{}, grpcclient.Idempotent())
	return c, func(ctx context.Context) error { _, err := ep(ctx, "id"); return err }
}

func waitTargets(t *testing.T, c *grpcclient.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(c.Targets()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("the client sees %d instances after 60s, want %d", len(c.Targets()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gRPC: an instance SIGKILLed, then one SIGSTOPped, under 200 idempotent
// calls/s: no call fails. A killed instance refuses connections (retried
// elsewhere, then ejected, then its lease expires); a hung one swallows
// attempts until the per-attempt timeout moves them elsewhere.
func TestGRPCInstanceKillAndHang_NoClientErrors(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		t.Run(sig.String(), func(t *testing.T) {
			m := startGRPCMesh(t)
			victim := m.start("g-1")
			m.start("g-2")
			m.start("g-3")
			c, call := m.client()
			waitTargets(t, c, 3)
			run := Load{Rate: rate, Duration: 30 * time.Second}.Start(context.Background(), call)
			time.Sleep(2 * time.Second)
			if err := victim.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			waitTargets(t, c, 2) // its lease expired: gone from discovery
			time.Sleep(time.Second)
			run.Stop()
			res := run.Wait()
			t.Logf("%s: load %s; client %+v", sig, res, c.State())
			checkNoErrors(t, "gRPC "+sig.String()+" under load", res, 5*time.Second)
		})
	}
}

// gRPC rolling restart under 200 idempotent calls/s: each instance is
// replaced (the new one up first, the old one SIGTERMed: NOT_SERVING,
// withdrawn, grace, GracefulStop) and no call fails.
func TestGRPCRollingRestart_NoClientErrors(t *testing.T) {
	m := startGRPCMesh(t)
	old := []*echoProc{m.start("r-1"), m.start("r-2"), m.start("r-3")}
	c, call := m.client()
	waitTargets(t, c, 3)
	run := Load{Rate: rate, Duration: 2 * time.Minute}.Start(context.Background(), call)
	time.Sleep(time.Second)
	for i, p := range old {
		m.start("n-" + string(rune('1'+i)))
		waitTargets(t, c, 4)
		p.stop(t)
		waitTargets(t, c, 3)
	}
	time.Sleep(time.Second)
	run.Stop()
	res := run.Wait()
	t.Logf("rolling restart: load %s; client %+v", res, c.State())
	checkNoErrors(t, "gRPC rolling restart", res, 5*time.Second)
}
