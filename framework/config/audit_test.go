package config

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
)

// With no flag, variable or file, Parse gives the documented defaults
// (docs/lifecycle.md, docs/overload.md, docs/observability.md, the flags'
// help): the numbers themselves, so a changed default is a decision.
func TestParse_DefaultsAreTheDocumentedOnes(t *testing.T) {
	c, err := Parse("user", "", backends, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("listen=%s self-check=%v load-shedding=%v shed-waiting=%d debug-pprof=%v grace=%s drain=%s withdraw=%s register=%s "+
		"max-body=%d body=%s body-idle=%s client-attempt=%s log-format=%s log-level=%s trace-ratio=%v access-log=%s registry=%s",
		c.Listen, c.SelfCheck, c.LoadShedding, c.ShedWaiting, c.DebugProfiles, c.Grace, c.DrainTimeout, c.WithdrawTimeout, c.RegisterTimeout,
		c.MaxBodyBytes, c.BodyTimeout, c.BodyIdleTimeout, c.ClientAttemptTimeout, c.LogFormat, c.LogLevel, c.TraceSampleRatio, c.AccessLog, c.Registry)
	want := "listen=:8080 self-check=true load-shedding=true shed-waiting=0 debug-pprof=true grace=2s drain=15s withdraw=5s register=0s " +
		"max-body=1048576 body=30s body-idle=10s client-attempt=0s log-format=logfmt log-level=info trace-ratio=1 access-log=all registry=toy"
	if got != want {
		t.Fatalf("defaults\n got %s\nwant %s", got, want)
	}
}

// Values that cannot work are refused at start (exit 2), naming the flag.
func TestParse_RefusesValuesThatCannotWork(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--trace-sample-ratio", "1.5"}, "--trace-sample-ratio"},
		{[]string{"--trace-sample-ratio", "0"}, "--trace-sample-ratio"},
		{[]string{"--tls-client-ca", "ca.pem"}, "--tls-client-ca needs --tls-cert"},
		{[]string{"--register-timeout", "-1s"}, "--register-timeout"},
		{[]string{"--drain-timeout", "-1s"}, "--drain-timeout"},
		{[]string{"--grace", "-1s"}, "--grace"},
	} {
		_, err := Parse("user", "", backends, c.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want a refusal naming %s", c.args, err, c.want)
		}
	}
}

// deadlines is a memory registry that notes how far ahead the deadlines
// of Register and Deregister were.
type deadlines struct {
	*memory.Registry
	mu                 sync.Mutex
	register, withdraw time.Duration
}

func ahead(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return -1
}

func (d *deadlines) Register(ctx context.Context, i registry.Instance) error {
	d.mu.Lock()
	d.register = ahead(ctx)
	d.mu.Unlock()
	return d.Registry.Register(ctx, i)
}

func (d *deadlines) Deregister(ctx context.Context, i registry.Instance) error {
	d.mu.Lock()
	d.withdraw = ahead(ctx)
	d.mu.Unlock()
	return d.Registry.Deregister(ctx, i)
}

// drainSeen is a transport that notes how far ahead its drain deadline was.
type drainSeen struct {
	*transporttest.LineEcho
	drain chan time.Duration
}

func (d drainSeen) Shutdown(ctx context.Context) error {
	d.drain <- ahead(ctx)
	return d.LineEcho.Shutdown(ctx)
}

// phaseLines records the key=value pairs of every phase line.
type phaseLines struct {
	mu    sync.Mutex
	lines []string
}

func (p *phaseLines) Log(kv ...any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, fmt.Sprint(kv...))
	return nil
}

func (p *phaseLines) has(sub string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// The lifecycle flags reach the App: AppOptions carries --grace,
// --drain-timeout, --withdraw-timeout, --register-timeout and
// --self-check into the phases they bound. Each bound is seen as the
// deadline the App hands the registry or transport (slack for a slow
// machine below it, never above).
func TestAppOptions_CarryTheLifecycleFlagsIntoTheApp(t *testing.T) {
	c, err := Parse("user", "", backends, []string{"--listen", "127.0.0.1:0", "--grace", "50ms", "--drain-timeout", "7s",
		"--withdraw-timeout", "20s", "--register-timeout", "11s", "--self-check=false"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	log := &phaseLines{}
	reg := &deadlines{Registry: memory.New()}
	echo := drainSeen{transporttest.NewLineEcho("127.0.0.1:0"), make(chan time.Duration, 1)}
	a, err := app.New("user", nil, reg, append(c.AppOptions(log), app.WithServer(echo), app.WithSignals(false))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready within 20s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s")
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	within := func(name string, got, max time.Duration) {
		if got <= max-5*time.Second || got > max {
			t.Errorf("%s: deadline %s ahead, want within (%s, %s]", name, got, max-5*time.Second, max)
		}
	}
	within("--register-timeout", reg.register, 11*time.Second)
	within("--withdraw-timeout", reg.withdraw, 20*time.Second)
	within("--drain-timeout", <-echo.drain, 7*time.Second)
	if !log.has("phasegracewait50ms") {
		t.Errorf("no grace line with --grace's 50ms: %q", log.lines)
	}
	if !log.has("phaseselfcheckskipped") {
		t.Errorf("the self-check ran with --self-check=false: %q", log.lines)
	}
}
