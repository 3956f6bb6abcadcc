package consul

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// Consul's own limits on service meta, which docs/registry-consul.md
// ("What is registered") says Register enforces before calling the agent
// with registry.ErrInvalidInstance: keys [A-Za-z0-9_-], no "consul-"
// prefix, values at most 512 bytes (registry's own limit is 1024),
// at most 64 pairs with the backend's reserved keys, and every endpoint
// joined into one meta value of at most 512 bytes. Each instance below
// passes registry's Validate, so only the backend's check refuses it.
func TestGuard_MetadataConsulCannotHoldIsRefusedBeforeTheAgent(t *testing.T) {
	base := func() registry.Instance {
		return registry.Instance{ID: "m-1", Name: "svc", Endpoints: []string{"http://127.0.0.1:8080"}}
	}
	if err := validate(base()); err != nil {
		t.Fatalf("a plain instance refused: %v", err)
	}
	many := map[string]string{}
	for i := range 64 - len(reservedMeta) + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	// One endpoint per transport, each within registry's 253 bytes,
	// together over Consul's 512.
	host := strings.TrimSuffix(strings.Repeat(strings.Repeat("h", 58)+".", 4), ".")
	eps := []string{"grpc://" + host + ":9090", "grpcs://" + host + ":9091"}
	cases := map[string]func(*registry.Instance){
		"value of 600 bytes":          func(in *registry.Instance) { in.Metadata = map[string]string{"k": strings.Repeat("v", 600)} },
		"key with consul- prefix":     func(in *registry.Instance) { in.Metadata = map[string]string{"consul-x": "v"} },
		"key with Consul- prefix":     func(in *registry.Instance) { in.Metadata = map[string]string{"Consul-X": "v"} },
		"key with a dot":              func(in *registry.Instance) { in.Metadata = map[string]string{"a.b": "v"} },
		"one pair too many":           func(in *registry.Instance) { in.Metadata = many },
		"endpoints over 512 bytes":    func(in *registry.Instance) { in.Endpoints = append([]string{"http://127.0.0.1:8080"}, eps...) },
		"reserved key zone":           func(in *registry.Instance) { in.Metadata = map[string]string{"zone": "z"} },
		"weight above Consul's 65535": func(in *registry.Instance) { in.Weight = 65536 },
	}
	for name, edit := range cases {
		in := base()
		edit(&in)
		if err := in.Validate(); err != nil {
			t.Fatalf("%s: registry's Validate refuses it already (%v): the case tests nothing", name, err)
		}
		if err := validate(in); !errors.Is(err, registry.ErrInvalidInstance) {
			t.Errorf("%s: validate = %v, want registry.ErrInvalidInstance", name, err)
		}
	}
}
