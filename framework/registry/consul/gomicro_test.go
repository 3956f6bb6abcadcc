package consul

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// go-micro's Consul registry cannot be built here (the module proxy
// answers 403 for github.com/go-micro/plugins/v4/registry/consul and for
// modules go-micro v1's in-tree one requires), so these tests write its
// records themselves, in its format: github.com/micro/go-micro
// registry/consul, consul.go (Register: ID = node.Id, Name = service
// name, Address/Port from the node address, Tags =
// encodeMetadata(node.Metadata) + encodeEndpoints(s.Endpoints) +
// encodeVersion(s.Version), a TTL check passed at once) and encoding.go
// (encode = hex(zlib(b)); "t-" one {"k":"v"} per tag, "e-" one endpoint
// JSON per tag, "v-" the version).

// microEncode is go-micro's encode: zlib, then hex.
func microEncode(b []byte) string {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return hex.EncodeToString(buf.Bytes())
}

// microValue and microEndpoint are go-micro's registry.Value and
// registry.Endpoint, with its JSON names.
type microValue struct {
	Name   string        `json:"name"`
	Type   string        `json:"type"`
	Values []*microValue `json:"values"`
}

type microEndpoint struct {
	Name     string            `json:"name"`
	Request  *microValue       `json:"request"`
	Response *microValue       `json:"response"`
	Metadata map[string]string `json:"metadata"`
}

// microTags renders a node's tags as go-micro's consul registry does.
func microTags(md map[string]string, eps []microEndpoint, version string) []string {
	var tags []string
	for k, v := range md {
		b, _ := json.Marshal(map[string]string{k: v})
		tags = append(tags, "t-"+microEncode(b))
	}
	for _, e := range eps {
		b, _ := json.Marshal(e)
		tags = append(tags, "e-"+microEncode(b))
	}
	return append(tags, "v-"+microEncode([]byte(version)))
}

// registerMicroNode registers one go-micro node on the agent the way
// go-micro's Register does, TTL check passed at once.
func registerMicroNode(t *testing.T, addr, service, id string, port int, tags []string) {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: service, Tags: tags, Port: port, Address: "127.0.0.1",
		Check: &api.AgentServiceCheck{TTL: "30s", DeregisterCriticalServiceAfter: "1m5s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Agent().ServiceDeregister(id) })
	if err := c.Agent().PassTTL("service:"+id, ""); err != nil {
		t.Fatal(err)
	}
}

func greeterEndpoints() []microEndpoint {
	str := func(n string) *microValue { return &microValue{Name: n, Type: "string"} }
	return []microEndpoint{
		{Name: "Greeter.Hello", Request: &microValue{Name: "Request", Type: "Request", Values: []*microValue{str("name")}},
			Response: &microValue{Name: "Response", Type: "Response", Values: []*microValue{str("msg")}}, Metadata: map[string]string{}},
		{Name: "Greeter.Stream", Request: &microValue{Name: "Request", Type: "Request"}, Response: &microValue{Name: "Response", Type: "Response"},
			Metadata: map[string]string{"stream": "true"}},
	}
}

// A Warren instancer follows a go-micro service on a real agent: dotted
// name, version from the v- tag, metadata from the t- tags, the RPC
// endpoints' names, the endpoint's scheme from go-micro's protocol, and
// none of go-micro's opaque tags among the instance's tags (a plain tag
// set on the service is kept).
func TestGoMicroRecords_ReadFromTheRealAgent(t *testing.T) {
	a := needAgent(t)
	svc := fmt.Sprintf("go.micro.srv.greeter%d", time.Now().UnixNano()%100000)
	md := map[string]string{"protocol": "mucp", "transport": "http", "broker": "http", "registry": "consul", "server": "mucp"}
	registerMicroNode(t, a.Addr(), svc, svc+"-7f1c2b6e", 40123, append(microTags(md, greeterEndpoints(), "1.0.0"), "canary"))
	gmd := map[string]string{"protocol": "grpc", "transport": "grpc", "server": "grpc"}
	registerMicroNode(t, a.Addr(), svc, svc+"-0a9d44e1", 40124, microTags(gmd, greeterEndpoints()[:1], "1.1.0"))

	logs := &syncbuf.Buffer{}
	r := newRegistry(t, a.Addr(), WithLogger(log.NewLogfmtLogger(logs)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", logs)
		}
	})
	in, err := r.NewInstancer(ctxT(t, 30*time.Second), svc)
	if err != nil {
		t.Fatalf("Instancer(%q): %v", svc, err)
	}
	defer in.Stop()
	rec := registrytest.Record(t, in)
	ev, _ := rec.WaitFor(t, 30*time.Second, "both go-micro nodes", func(ev sd.Event) bool {
		return ev.Err == nil && len(ev.Instances) == 2
	})
	mucp, ok := registrytest.ByID(ev, svc+"-7f1c2b6e")
	if !ok {
		t.Fatalf("mucp node missing: %v", ev.Instances)
	}
	want := registry.Instance{
		ID: svc + "-7f1c2b6e", Name: svc,
		Endpoints: []string{"mucp://127.0.0.1:40123"},
		Version:   "1.0.0",
		Tags:      []string{"canary"},
		Metadata: map[string]string{"protocol": "mucp", "transport": "http", "broker": "http", "registry": "consul", "server": "mucp",
			"micro-endpoints": "Greeter.Hello,Greeter.Stream", "dc": "dc1"},
	}
	if !sameInstance(mucp, want) {
		t.Errorf("mucp node read as\n %+v\nwant\n %+v", mucp, want)
	}
	grpc, ok := registrytest.ByID(ev, svc+"-0a9d44e1")
	if !ok {
		t.Fatalf("grpc node missing: %v", ev.Instances)
	}
	if ep, ok := grpc.Endpoint("grpc"); !ok || ep != "grpc://127.0.0.1:40124" || grpc.Version != "1.1.0" || len(grpc.Tags) != 0 {
		t.Errorf("grpc node read as %+v; want its grpc endpoint, version 1.1.0, no tags", grpc)
	}
	if _, ok := mucp.Endpoint("http", "https"); ok {
		t.Errorf("a mucp node offers an HTTP endpoint to Warren's HTTP client: %v", mucp.Endpoints)
	}
}

func sameInstance(a, b registry.Instance) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Version == b.Version &&
		slices.Equal(a.Endpoints, b.Endpoints) && slices.Equal(a.Tags, b.Tags) &&
		fmt.Sprint(a.Metadata) == fmt.Sprint(b.Metadata)
}

// Tags written by another zlib (Python's, level 6), not by the test's own
// encoder, decode too; the plain "v="/"t=" tags of older go-micro as
// well; a tag that looks like go-micro's but does not decode stays a tag.
func TestGoMicroTags_DecodeOtherEncodersAndOldFormat(t *testing.T) {
	g := readGoMicroTags([]string{
		"v-789c33d433d033000002ce00ee",                             // "1.0.0"
		"t-789cab562a28ca2fc94fcecf51b2524a2f2a4856aa0500468306d9", // {"protocol":"grpc"}
		"e-789cab56ca4bcc4d55b252722f4a4d2d492dd2f348cdc9c957d2512a4a2d2c4d2d2e51b2aa86a908828ae828955416a00a9425e600594a56d170c5600aaeb2b8a428332f1d49615e694e4e6d6c2dc89ae282fcbce254147ba0424816c145306dca2d4e27c6a2dcd492c494c49244a045b5b500e9a4537b",
		`t={"team":"core"}`,
		"t-zz-not-hex",
		"blue",
	})
	if !g.found || g.version != "1.0.0" || g.metadata["protocol"] != "grpc" || g.metadata["team"] != "core" ||
		!slices.Equal(g.endpoints, []string{"Greeter.Hello"}) || !slices.Equal(g.rest, []string{"t-zz-not-hex", "blue"}) {
		t.Fatalf("decoded %+v", g)
	}
}

// A Warren registration is never read as go-micro's, whatever its tags
// look like; Warren names and dotted go-micro names are the only names an
// instancer takes.
func TestGoMicro_WarrenRecordsUntouched_NamesChecked(t *testing.T) {
	inst := registry.Instance{ID: "u-1", Name: "user", Endpoints: []string{"http://127.0.0.1:8080"}, Tags: []string{"v=2", "t-00"}}
	got, err := toInstance(&api.ServiceEntry{Service: agentService(serviceRegistration(inst))})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "" || !slices.Equal(got.Tags, inst.Tags) {
		t.Errorf("Warren record read as %+v", got)
	}
	for _, name := range []string{"go.micro.srv.greeter", "com.example.api", "a.b"} {
		if !discoverableName(name) {
			t.Errorf("%q refused", name)
		}
	}
	for _, name := range []string{"Go.Micro.srv", ".go.micro", "go..micro", "go.micro.", "go_micro.srv", "go.micro/srv"} {
		if discoverableName(name) {
			t.Errorf("%q accepted", name)
		}
		r := &Registry{}
		if _, err := r.NewInstancer(ctxT(t, 30*time.Second), name); !errors.Is(err, registry.ErrInvalidInstance) {
			t.Errorf("Instancer(%q) = %v, want ErrInvalidInstance", name, err)
		}
	}
}

// agentService is what the agent would return for a registration.
func agentService(s *api.AgentServiceRegistration) *api.AgentService {
	return &api.AgentService{ID: s.ID, Service: s.Name, Tags: s.Tags, Address: s.Address, Port: s.Port, Meta: s.Meta}
}
