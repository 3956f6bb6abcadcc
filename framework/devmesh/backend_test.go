package devmesh

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest/toyregistry"
)

// toyServer is a dev server of the toy backend: nothing runs, it only
// tells services (and the launcher) which label to use.
type toyServer struct{ closed int }

func (s *toyServer) Flags(ttl time.Duration) map[string]string {
	return map[string]string{"toy-label": "ttl-" + ttl.String()}
}
func (s *toyServer) String() string { return "toy (nothing to run)" }
func (s *toyServer) Close() error   { s.closed++; return nil }

func TestStartRegistry_FindsTheBackendByNameAndOpensItLikeAService(t *testing.T) {
	srv := &toyServer{}
	toy := Backend{Registry: toyregistry.Backend(), Start: func(context.Context, string) (Server, error) { return srv, nil }}
	other := Backend{Registry: registry.Backend{Name: "other"}, Start: func(context.Context, string) (Server, error) {
		return nil, errors.New("the wrong backend was started")
	}}
	m := &Mesh{cfg: withDefaults(Config{Root: t.TempDir(), Backends: []Backend{other, toy}, Registry: "toy", TTL: 3 * time.Second, Out: &lockedDiscard{}})}
	if err := m.startRegistry(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, ok := m.disc.(*toyregistry.Registry)
	if !ok || r.Label != "ttl-3s" {
		t.Fatalf("launcher's client = %#v, want the toy opened with the server's flags", m.disc)
	}
	env := m.registryEnv()
	for _, want := range []string{"WARREN_REGISTRY=toy", "WARREN_TOY_LABEL=ttl-3s"} {
		if !slices.Contains(env, want) {
			t.Errorf("service env %q lacks %s", env, want)
		}
	}
	if err := m.Stop(); err != nil || srv.closed != 1 {
		t.Fatalf("Stop: %v, server closed %d times", err, srv.closed)
	}
}

func TestStartRegistry_UnknownNameListsTheBackends(t *testing.T) {
	toy := Backend{Registry: toyregistry.Backend(), Start: func(context.Context, string) (Server, error) { return &toyServer{}, nil }}
	m := &Mesh{cfg: withDefaults(Config{Root: t.TempDir(), Backends: []Backend{toy}, Registry: "zookeeper", Out: &lockedDiscard{}})}
	err := m.startRegistry(context.Background())
	if !errors.Is(err, registry.ErrUnknownBackend) || m.server != nil {
		t.Fatalf("err = %v, server %v", err, m.server)
	}
	if m := withDefaults(Config{Backends: []Backend{toy}}); m.Registry != "toy" {
		t.Fatalf("default registry %q, want the first backend", m.Registry)
	}
}

type lockedDiscard struct{}

func (*lockedDiscard) Write(p []byte) (int, error) { return len(p), nil }
