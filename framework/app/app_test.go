package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

func TestRun_PhasesInOrderRegisterAfterSelfCheckReleaseLast(t *testing.T) {
	j := &journal{}
	reg := recorder{memory.New(), j}
	a, err := New("orders", okHandler(), reg, testOptions(j)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	if got := reg.Instances("orders"); len(got) != 1 || got[0].HostPort() != a.Instance().HostPort() {
		t.Fatalf("registered %+v", got)
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after a clean shutdown", err)
	}
	want := []string{"phase:listen", "phase:serve", "phase:selfcheck", "registry:register", "phase:register", "phase:run",
		"registry:deregister", "phase:withdraw", "phase:grace", "phase:drain", "registry:close", "phase:release", "phase:exit"}
	if got := j.list(); !slices.Equal(got, want) {
		t.Fatalf("journal\n got %v\nwant %v", got, want)
	}
}

func TestRun_AdvertisedPortFollowsRealPort(t *testing.T) {
	j := &journal{}
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithAdvertise("127.0.0.1"))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	inst := a.Instance()
	_, _, port, err := registry.ParseEndpoint(inst.Endpoints[0])
	if err != nil || inst.ID != registry.DefaultID("svc", "127.0.0.1", port) {
		t.Fatalf("instance %+v", inst)
	}
	cancel()
	wait(t, done)
}

func TestNew_RejectsBadInput(t *testing.T) {
	reg := memory.New()
	for name, tc := range map[string]struct {
		svc string
		h   http.Handler
		reg registry.Registry
		opt []Option
	}{
		"bad name":   {"Bad Name", okHandler(), reg, nil},
		"nil h":      {"svc", nil, reg, nil},
		"nil reg":    {"svc", okHandler(), nil, nil},
		"neg weight": {"svc", okHandler(), reg, []Option{WithWeight(-1)}},
	} {
		if _, err := New(tc.svc, tc.h, tc.reg, tc.opt...); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestRun_TwiceIsAnError(t *testing.T) {
	j := &journal{}
	a, _ := New("svc", okHandler(), memory.New(), testOptions(j)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	if err := a.Run(ctx); !errors.Is(err, ErrAlreadyRun) {
		t.Fatalf("second Run = %v", err)
	}
	cancel()
	wait(t, done)
}

func TestRun_RegistrationConflictFailsStartup(t *testing.T) {
	srv := memory.NewServer()
	j := &journal{}
	// Another live process (another client of the registry) holds the ID
	// at a different address.
	a, _ := New("svc", okHandler(), srv.Registry(), testOptions(j, WithID("fixed"))...)
	other := registry.Instance{ID: "fixed", Name: "svc", Endpoints: []string{"http://127.0.0.2:1"}}
	if err := srv.Registry().Register(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.Run(ctx)
	if !errors.Is(err, ErrRegister) || !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("Run = %v", err)
	}
	// The failed phase writes its line too (docs/lifecycle.md: every
	// phase does), before the release that undoes the start-up.
	got := j.list()
	if r, rel := indexOf(got, "phase:register"), indexOf(got, "phase:release"); r < 0 || rel < r {
		t.Fatalf("phases %v; want a register line before release", got)
	}
}

func TestRun_DebugListenerIsPublishedAsMetricsMetadata(t *testing.T) {
	j := &journal{}
	reg := memory.New()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "warren_up 1\n") })
	a, err := New("svc", okHandler(), reg, testOptions(j, WithDebugListener("127.0.0.1:0", metrics), WithMetadata(map[string]string{"team": "x"}))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	got := reg.Instances("svc")
	if len(got) != 1 || got[0].Metadata["team"] != "x" {
		t.Fatalf("registered %+v", got)
	}
	url := got[0].Metadata[MetricsMetadataKey]
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("metrics metadata %q", url)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
}

func TestDebugHostPort_UsesAdvertisedHostForWildcardBinds(t *testing.T) {
	if got := debugHostPort(&net.TCPAddr{IP: net.IPv4zero, Port: 9090}, "10.0.0.7"); got != "10.0.0.7:9090" {
		t.Fatalf("wildcard: %s", got)
	}
	if got := debugHostPort(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9090}, "10.0.0.7"); got != "127.0.0.1:9090" {
		t.Fatalf("specific: %s", got)
	}
}
