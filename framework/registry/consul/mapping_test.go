package consul

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
)

// asEntry is what the agent answers for a service registered as def.
func asEntry(def *api.AgentServiceRegistration) *api.ServiceEntry {
	return &api.ServiceEntry{
		Node: &api.Node{Address: "10.9.9.9", Datacenter: "dc1"},
		Service: &api.AgentService{ID: def.ID, Service: def.Name, Tags: def.Tags, Address: def.Address,
			Port: def.Port, Meta: def.Meta},
	}
}

func TestMapping_EveryEndpointSurvivesTheRoundTrip(t *testing.T) {
	for _, eps := range [][]string{
		{"http://10.0.0.1:8080"},
		{"grpc://10.0.0.1:9090", "https://10.0.0.1:8443"},
		{"grpcs://[::1]:9443"},
	} {
		in := registry.Instance{ID: "a", Name: "svc", Endpoints: eps, Version: "2", Zone: "z", Weight: 3,
			Tags: []string{"t"}, Metadata: map[string]string{"k": "v"}}
		if err := validate(in); err != nil {
			t.Fatal(err)
		}
		got, err := toInstance(asEntry(serviceRegistration(in)))
		if err != nil {
			t.Fatal(err)
		}
		in.Metadata["dc"] = "dc1"
		if !reflect.DeepEqual(got, in) {
			t.Errorf("round trip of %v:\n got %#v\nwant %#v", eps, got, in)
		}
	}
}

// Address, Port and "scheme" keep their round-1 meaning (the HTTP
// endpoint), so a round-1 reader still calls the instance.
func TestMapping_ServiceAddressIsTheHTTPEndpoint(t *testing.T) {
	def := serviceRegistration(registry.Instance{ID: "a", Name: "svc", Endpoints: []string{"grpc://10.0.0.1:9090", "https://10.0.0.2:8443"}})
	if def.Address != "10.0.0.2" || def.Port != 8443 || def.Meta[metaScheme] != "https" {
		t.Fatalf("service = %s:%d scheme %q, want the HTTPS endpoint", def.Address, def.Port, def.Meta[metaScheme])
	}
	def = serviceRegistration(registry.Instance{ID: "a", Name: "svc", Endpoints: []string{"http://h:1"}})
	if _, ok := def.Meta[metaScheme]; ok {
		t.Fatalf("plain http wrote a scheme, round 1 did not: %v", def.Meta)
	}
}

// Services registered by round 1 (no endpoints meta) still decode, from a
// stored answer of GET /v1/health/service.
func TestMapping_Round1ServicesDecode(t *testing.T) {
	b, err := os.ReadFile("../testdata/round1/consul-health-service.json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []*api.ServiceEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	want := []registry.Instance{
		{ID: "user-10.0.0.7-8443", Name: "user", Endpoints: []string{"https://10.0.0.7:8443"}, Version: "1.4.2", Zone: "eu-1",
			Weight: 50, Tags: []string{"canary"}, Metadata: map[string]string{"metrics": "http://10.0.0.7:9100/metrics", "dc": "dc1"}},
		// An empty service address means the node's.
		{ID: "user-node-2-8080", Name: "user", Endpoints: []string{"http://10.0.0.8:8080"}, Metadata: map[string]string{"dc": "dc1"}},
	}
	for i, e := range entries {
		got, err := toInstance(e)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("entry %d:\n got %#v\nwant %#v", i, got, want[i])
		}
	}
}

func TestMapping_RefusesWhatConsulCannotHold(t *testing.T) {
	in := registry.Instance{ID: "a", Name: "svc", Endpoints: []string{"http://h:1"}, Metadata: map[string]string{"endpoints": "x"}}
	if err := validate(in); err == nil {
		t.Error("metadata key endpoints accepted; it is reserved")
	}
	if _, err := toInstance(&api.ServiceEntry{Service: &api.AgentService{ID: "x", Service: "svc", Port: 1}}); err == nil {
		t.Error("a round-1 service with no address anywhere decoded")
	}
}
