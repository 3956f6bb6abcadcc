package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
)

// traced journals each transport call as "<scheme>:<call>".
type traced struct {
	transport.Server
	j *journal
}

func (t traced) Listen(h transport.Host) (net.Addr, error) {
	t.j.add(t.Scheme() + ":listen")
	return t.Server.Listen(h)
}

func (t traced) Serve() error {
	t.j.add(t.Scheme() + ":serve")
	return t.Server.Serve()
}

func (t traced) Probe(ctx context.Context, ep string) error {
	err := t.Server.Probe(ctx, ep)
	if err == nil {
		t.j.add(t.Scheme() + ":probed")
	}
	return err
}

func (t traced) Shutdown(ctx context.Context) error {
	t.j.add(t.Scheme() + ":shutdown")
	return t.Server.Shutdown(ctx)
}

// A second transport goes through every phase with the HTTP one: all
// listen before any serves, all serve before the self-checks, each passes
// its self-check before the one registration, which carries both
// endpoints, and both drain after the withdrawal and before the release.
func TestRun_TwoTransportsKeepThePhaseOrderAndRegisterOnceWithBothEndpoints(t *testing.T) {
	j := &journal{}
	reg := recorder{memory.New(), j}
	echo := transporttest.NewLineEcho("127.0.0.1:0")
	a, err := New("duo", okHandler(), reg, testOptions(j, WithServer(traced{echo, j}))...)
	if err != nil {
		t.Fatal(err)
	}
	a.servers[0] = traced{a.servers[0], j} // the HTTP server New built
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)

	got := reg.Instances("duo")
	if len(got) != 1 {
		t.Fatalf("registered %+v, want one instance", got)
	}
	eps := got[0].Endpoints
	if len(eps) != 2 || !strings.HasPrefix(eps[0], "http://127.0.0.1:") || !strings.HasPrefix(eps[1], "echo://127.0.0.1:") {
		t.Fatalf("registered endpoints %v, want http:// then echo://", eps)
	}
	// The published echo endpoint answers, with this process's nonce.
	ep, _ := got[0].Endpoint("echo")
	if err := echo.Probe(context.Background(), ep); err != nil {
		t.Fatalf("published echo endpoint: %v", err)
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}

	list := j.list()
	at := func(s string) int {
		i := indexOf(list, s)
		if i < 0 {
			t.Fatalf("%s missing from %v", s, list)
		}
		return i
	}
	before := func(a, b string) {
		if at(a) >= at(b) {
			t.Errorf("%s after %s in %v", a, b, list)
		}
	}
	for _, x := range []string{"http", "echo"} {
		for _, y := range []string{"http", "echo"} {
			before(x+":listen", y+":probed")
			before(x+":listen", "phase:serve")
			before(y+":serve", "phase:selfcheck")
		}
		before("phase:listen", x+":serve")
		before(x+":probed", "registry:register")
		before("registry:deregister", x+":shutdown")
		before("phase:grace", x+":shutdown")
		before(x+":shutdown", "registry:close")
	}
	if n := strings.Count(strings.Join(list, " "), "registry:register"); n != 1 {
		t.Errorf("%d registrations, want one for both transports: %v", n, list)
	}
}

// Draining waits for the second transport's in-flight connection, as it
// does for HTTP requests.
func TestRun_DrainWaitsForEveryTransport(t *testing.T) {
	j := &journal{}
	echo := transporttest.NewLineEcho("127.0.0.1:0")
	a, err := New("duo", okHandler(), memory.New(), testOptions(j, WithServer(echo), WithDrainTimeout(300*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	ep, _ := a.Instance().Endpoint("echo")
	c, err := net.Dial("tcp", strings.TrimPrefix(ep, "echo://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hi")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "hi\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
	cancel() // the connection stays open: the drain must time out on it
	err = wait(t, done)
	if !errors.Is(err, ErrDrainTimeout) || !strings.Contains(err.Error(), "echo") || !strings.Contains(err.Error(), "drain timeout") {
		t.Fatalf("Run = %v, want ErrDrainTimeout naming the echo transport and the timeout", err)
	}
}

// closeRecorder is a closer that notes it was closed.
type closeRecorder struct {
	j    *journal
	name string
}

func (c closeRecorder) Close() error { c.j.add("closed:" + c.name); return nil }

// When a transport cannot listen, Run still closes the closers and the
// registry it owns (round 1 returned and leaked them), and the transports
// that did listen.
func TestRun_ListenFailureReleasesRegistryClosersAndBoundTransports(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	j := &journal{}
	reg := recorder{memory.New(), j}
	a, err := New("busy", nil, reg, testOptions(j,
		WithServer(transporttest.NewLineEcho("127.0.0.1:0")),
		WithServer(&renamed{transporttest.NewLineEcho(busy.Addr().String()), "echo2"}),
		WithCloser(closeRecorder{j, "dep"}))...)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run = %v, want the listen error", err)
	}
	list := j.list()
	if !slices.Contains(list, "closed:dep") || !slices.Contains(list, "registry:close") {
		t.Fatalf("after a failed listen: %v, want the closer and the registry closed", list)
	}
	if c, err := net.DialTimeout("tcp", a.addrs[0].String(), time.Second); err == nil {
		c.Close()
		t.Fatalf("the transport that did listen still accepts at %s", a.addrs[0])
	}
	if slices.Contains(list, "registry:register") {
		t.Fatalf("registered after a failed start: %v", list)
	}
}

// renamed gives a transport another scheme, for two of one kind.
type renamed struct {
	transport.Server
	scheme string
}

func (r *renamed) Scheme() string { return r.scheme }

func TestNew_RefusesTwoTransportsOfOneScheme(t *testing.T) {
	_, err := New("dup", nil, memory.New(), WithServer(transporttest.NewLineEcho("127.0.0.1:0")), WithServer(transporttest.NewLineEcho("127.0.0.1:0")))
	if err == nil {
		t.Fatal("New accepted two echo transports")
	}
	if _, err := New("none", nil, memory.New()); err == nil {
		t.Fatal("New accepted an App with no transport")
	}
}

// WithWatchdog(0, n) used to panic in time.NewTicker once the instance
// was registered; now New refuses it.
func TestNew_RefusesAWatchdogWithoutInterval(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := New("wd", okHandler(), memory.New(), WithWatchdog(d, 3))
		if err == nil || !strings.Contains(err.Error(), "WithWatchdog") {
			t.Errorf("WithWatchdog(%s, 3): New = %v, want an error naming the option", d, err)
		}
	}
	if _, err := New("wd", okHandler(), memory.New(), WithWatchdog(0, 0)); err != nil {
		t.Errorf("WithWatchdog(0, 0) turns the watchdog off, New = %v", err)
	}
}

func TestNew_RefusesBadOptionValues(t *testing.T) {
	for name, o := range map[string]Option{
		"WithWeight":           WithWeight(-1),
		"WithDrainTimeout":     WithDrainTimeout(-1),
		"WithSelfCheckTimeout": WithSelfCheckTimeout(-1),
		"WithGracePeriod":      WithGracePeriod(-1),
		"WithServer":           WithServer(nil),
		"WithCloser":           WithCloser(nil),
		"WithLogger":           WithLogger(nil),
		"WithHTTPTimeouts":     WithHTTPTimeouts(0, time.Second),
		"WithBodyTimeouts":     WithBodyTimeouts(-time.Second, 0),
		"WithMaxBodyBytes":     WithMaxBodyBytes(-1),
		"WithHTTPMiddleware":   WithHTTPMiddleware(nil),
	} {
		if _, err := New("opt", okHandler(), memory.New(), o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: New = %v, want an error naming it", name, err)
		}
	}
}

// Probes, the watchdog and a registry heartbeat arriving together share
// one run of the service's own checks (round 1 ran every check, in a
// goroutine each, for each of them), while draining shows at once.
func TestReadiness_ServesOneCachedRunOfTheServicesChecks(t *testing.T) {
	j := &journal{}
	var runs atomic.Int64
	a, err := New("cached", okHandler(), memory.New(), testOptions(j,
		WithReadinessCheck("db", func(context.Context) error { runs.Add(1); return nil }),
		WithWatchdog(time.Hour, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	before := runs.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(2)
		go func() { defer wg.Done(); readyz(t, a) }()
		go func() { defer wg.Done(); _ = a.ownReadiness(context.Background()) }()
	}
	wg.Wait()
	// 40 asks; at most one run per ReadinessCacheAge window they spanned.
	if n := runs.Load() - before; n > 2 {
		t.Fatalf("40 readiness asks ran the check %d times, want one run shared (two if a cache window ended)", n)
	}
	a.draining.Store(true)
	if body := readyz(t, a); body.Checks["draining"].OK {
		t.Fatalf("draining not shown at once: %+v", body)
	}
}
