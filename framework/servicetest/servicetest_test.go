package servicetest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/servicetest"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

type pong struct {
	Path string `json:"path"`
}

func TestStart_InstanceIsReachableThroughDiscovery(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"path":"` + r.URL.Path + `"}`))
	})
	d := servicetest.Start(t, "pinger", h)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, d, "pinger")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := client.Call[struct{}, pong](ctx, c, "GET", "/ping", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != "/ping" {
		t.Fatalf("path = %q", got.Path)
	}
}

func TestStart_TestsDoNotSeeEachOthersInstances(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	d1 := servicetest.Start(t, "same", h)
	servicetest.Start(t, "same", h) // registered before d1 lists: it would show

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := d1.Instancer(ctx, "same")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	ch := make(chan sd.Event, 16)
	in.Register(ch)
	defer in.Deregister(ch)
	for {
		select {
		case ev := <-ch:
			if ev.Err != nil || len(ev.Instances) == 0 {
				continue
			}
			if len(ev.Instances) != 1 {
				t.Fatalf("instances = %v, want only this Start's own", ev.Instances)
			}
			return
		case <-ctx.Done():
			t.Fatal("no instance discovered")
		}
	}
}

// fatalRecorder is a testing.TB whose Fatalf records instead of stopping.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestCheckSettings_RefusesFieldsThatCannotBeFlags(t *testing.T) {
	type good struct {
		Greeting string        `help:"the greeting"`
		Timeout  time.Duration `setting:"ledger-timeout"`
	}
	r := &fatalRecorder{TB: t}
	servicetest.CheckSettings(r, "svc", &good{})
	if r.msg != "" {
		t.Fatalf("good settings refused: %s", r.msg)
	}
	type bad struct {
		Rate   float32
		Listen string // the framework's --listen
	}
	r = &fatalRecorder{TB: t}
	servicetest.CheckSettings(r, "svc", &bad{})
	for _, want := range []string{"bad.Rate: type float32", "bad.Listen: flag --listen"} {
		if !strings.Contains(r.msg, want) {
			t.Errorf("bad settings: %q; want it to name %q", r.msg, want)
		}
	}
}
