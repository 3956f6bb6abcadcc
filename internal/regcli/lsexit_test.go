package regcli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// partlyDown is a real registry that cannot be read for one service.
type partlyDown struct {
	registry.Discovery
	down string
}

func (p partlyDown) Instancer(ctx context.Context, svc string) (sd.Instancer, error) {
	if svc == p.down {
		return nil, errors.New("etcd unreachable")
	}
	return p.Discovery.Instancer(ctx, svc)
}

// TestLs_AServiceThatCannotBeReadFailsAfterTheOthersArePrinted:
// docs/mesh-page.md, "a service the registry cannot be read for is
// reported on stderr and the command exits 1 after printing the others".
// Mutation audit M6: kills the partial-failure error dropped (ls then
// exited 0, the unread service missing from the table without a word on
// the exit code).
func TestLs_AServiceThatCannotBeReadFailsAfterTheOthersArePrinted(t *testing.T) {
	r := memory.New()
	defer r.Close()
	register(t, r, inst("user", "user-1", "41001", "zone-a", "1.4.0", time.Minute))
	var out, errOut bytes.Buffer
	err := ls(context.Background(), env(&out, &errOut), partlyDown{r, "payment"}, []string{"payment", "user"}, true, false)
	if err == nil || !strings.Contains(err.Error(), "cannot read payment") {
		t.Errorf("err = %v, want one naming payment as unread", err)
	}
	var none NoInstance
	if errors.As(err, &none) {
		t.Errorf("err = %v: an unread service is not one without instances (exit 1, not 3)", err)
	}
	if !strings.Contains(out.String(), "user-1") {
		t.Errorf("stdout lacks the service that was read:\n%s", out.String())
	}
	if e := errOut.String(); !strings.HasPrefix(e, "warren ls: payment: ") || !strings.Contains(e, "etcd unreachable") {
		t.Errorf("stderr lacks the unread service and why: %q", errOut.String())
	}
}

// TestLs_ARecordWithoutWeightOrWithAFutureTimeShowsWhatItMeans: a bare
// host:port (as go-kit's own instancers publish) has no weight and shows
// the weight balancers give it, DefaultWeight, as the doc's table does;
// a registration time ahead of this clock (another host's skew) shows
// "0s ago", never a negative age. Mutation audit M6: kills the
// DefaultWeight fallback and the negative-age clamp removed.
func TestLs_ARecordWithoutWeightOrWithAFutureTimeShowsWhatItMeans(t *testing.T) {
	var out bytes.Buffer
	writeTable(env(&out, &bytes.Buffer{}), []registry.Instance{
		mustParse(t, "legacy", "127.0.0.1:9000"),
		{ID: "user-1", Name: "user", Endpoints: []string{"http://127.0.0.1:41001"}, Weight: 7,
			Metadata: map[string]string{"registered": clock.Add(time.Minute).Format(time.RFC3339)}},
	})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s\nwant a header and two rows", out.String())
	}
	if f := strings.Fields(lines[1]); len(f) < 5 || f[4] != "100" {
		t.Errorf("bare host:port row %q: WEIGHT %v, want 100 (registry.DefaultWeight)", lines[1], f)
	}
	if f := strings.Fields(lines[2]); len(f) < 8 || f[4] != "7" || f[6] != "0s" {
		t.Errorf("row %q: want WEIGHT 7 and REGISTERED 0s ago for a time ahead of the clock", lines[2])
	}
}

// mustParse is the instance discovery of service reads from s.
func mustParse(t *testing.T, service, s string) registry.Instance {
	t.Helper()
	i, err := registry.ParseInstance(s)
	if err != nil {
		t.Fatal(err)
	}
	i.Name = service
	return i
}

// TestLs_ABoolFlagBetweenServicesTakesNoValue: flags may come after the
// services (`warren ls user --json order`), and --json, a bool flag,
// does not take the next argument as its value: both services are read
// and, having no instance, named in the exit-3 answer. Mutation audit M6:
// kills flagsFirst treating a bool flag as taking a value (order was then
// parsed as --json's value and "--" as a service name: a usage error).
func TestLs_ABoolFlagBetweenServicesTakesNoValue(t *testing.T) {
	var out, errOut bytes.Buffer
	e := Env{Stdout: &out, Stderr: &errOut, Backends: registry.Backends{memory.Backend()}, Now: func() time.Time { return clock }}
	err := Ls(t.Context(), e, []string{"user", "--json", "order"})
	var none NoInstance
	if !errors.As(err, &none) || strings.Join(none.Services, ",") != "user,order" {
		t.Fatalf("warren ls user --json order: err = %v (stderr %q); want no instance of user, order", err, errOut.String())
	}
	if out.Len() != 0 {
		t.Errorf("--json with no instance printed %q, want nothing (no table)", out.String())
	}
}

// cacheDiscovery serves one service from a registry.Cache, the instancer
// every backend publishes through, so a test can set the events a
// backend sends: an error with the last good set, then recovery.
type cacheDiscovery struct{ c *registry.Cache }

func (d cacheDiscovery) Instancer(context.Context, string) (sd.Instancer, error) {
	return cacheInstancer{d.c}, nil
}

// cacheInstancer is a Cache as an sd.Instancer (Stop: nothing to release).
type cacheInstancer struct{ *registry.Cache }

func (cacheInstancer) Stop() {}

// TestWatch_EmptyThenErrorOnceThenRecovered: a service with no instance
// says so when the watch begins; a discovery error is printed once while
// it lasts, even as the set it carries changes, and its end is printed
// as "recovered". Mutation audit M6: kills the "no instances" line
// dropped, the repeated-error suppression dropped, and the recovered line
// dropped.
func TestWatch_EmptyThenErrorOnceThenRecovered(t *testing.T) {
	c := registry.NewCache()
	c.Update(sd.Event{})
	out := &syncbuf.Buffer{}
	stop := startWatch(t, func(ctx context.Context, e Env) error { return watch(ctx, e, cacheDiscovery{c}, "user", false) }, out)
	defer func() { stop() }() // a t.Fatal before the end still stops the watch
	u1 := inst("user", "user-1", "41001", "zone-a", "1.4.0", time.Minute).String()
	u2 := inst("user", "user-2", "41002", "zone-a", "1.4.0", time.Minute).String()
	down := errors.New("etcd unreachable")
	waitLines(t, out, 1)
	for i, ev := range []sd.Event{
		{Instances: []string{u1}},
		{Instances: []string{u1}, Err: down},
		{Instances: []string{u1, u2}, Err: down}, // the same error: only the new instance is a line
		{Instances: []string{u1, u2}},
	} {
		c.Update(ev) // synchronous: the watch has the event when it returns
		waitLines(t, out, i+2)
	}
	stop()
	stop = func() {}
	want := []string{
		"08:30:00.000  present    user  -  no instances",
		"08:30:00.000  register   user  user-1  ",
		"08:30:00.000  error      user  -  etcd unreachable",
		"08:30:00.000  register   user  user-2  ",
		"08:30:00.000  recovered  user  -  discovery answers again",
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
}
