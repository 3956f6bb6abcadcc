package nginx_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/registry"
)

func snap(services ...edge.Service) edge.Snapshot { return edge.Snapshot{Services: services} }

func svc(name string, insts ...registry.Instance) edge.Service {
	return edge.Service{Name: name, Instances: insts}
}

func in(id string, weight int, zone string, endpoints ...string) registry.Instance {
	return registry.Instance{ID: id, Weight: weight, Zone: zone, Endpoints: endpoints}
}

func render(t *testing.T, s edge.Snapshot, opts ...nginx.RenderOption) string {
	t.Helper()
	r, err := nginx.NewRenderer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRender_OneUpstreamPerServiceWithWeightsAndAPlaceholderWhenEmpty(t *testing.T) {
	got := render(t, snap(
		svc("user",
			in("user-1", 0, "zone-a", "http://127.0.0.1:8001"),
			in("user-2", 30, "zone-b", "grpc://127.0.0.1:9002", "http://[::1]:8002"),
			in("user-3", 0, "", "grpc://127.0.0.1:9003")),
		svc("order"),
	), nginx.WithBalance("", "least_conn"), nginx.WithBalance("order", "hash $request_uri consistent"))
	for _, want := range []string{
		"upstream user {\n    least_conn;\n",
		"server 127.0.0.1:8001 weight=100 max_fails=1 fail_timeout=10s; # user-1 zone=zone-a\n",
		"server [::1]:8002 weight=30 max_fails=1 fail_timeout=10s; # user-2 zone=zone-b\n",
		"upstream order {\n    hash $request_uri consistent;\n",
		"server 127.0.0.1:1 down;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered file lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "9003") || strings.Count(got, "upstream ") != 2 {
		t.Errorf("a gRPC-only instance reached nginx, or not one upstream per service:\n%s", got)
	}
}

func TestRender_RegistryFieldsCannotEndTheComment(t *testing.T) {
	got := render(t, snap(svc("user", in("user-1\n}\nserver evil", 0, "z\nx", "http://127.0.0.1:8001"))))
	if strings.Contains(got, "\nserver evil") || strings.Contains(got, "\nx") {
		t.Fatalf("a control character in a registry field broke out of the comment:\n%s", got)
	}
}

func TestParseBalance(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "round_robin": "", "least_conn": "least_conn", "ip_hash": "ip_hash", "random": "random",
		"random two least_conn": "random two least_conn", "hash $request_uri": "hash $request_uri",
		"hash  $cookie_session   consistent": "hash $cookie_session consistent",
	} {
		got, err := nginx.ParseBalance(in)
		if err != nil || got != want {
			t.Errorf("ParseBalance(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"fastest", "hash", "hash $a; include /etc/passwd", "hash $a {", "least_conn extra", "hash $a inconsistent"} {
		if _, err := nginx.ParseBalance(bad); !errors.Is(err, nginx.ErrBadBalance) {
			t.Errorf("ParseBalance(%q): %v; want ErrBadBalance", bad, err)
		}
	}
	if _, err := nginx.NewRenderer(nginx.WithBalance("Bad Name", "least_conn")); err == nil {
		t.Error("a balance for an invalid service name was accepted")
	}
}

func TestRender_UserTemplateGetsTheData(t *testing.T) {
	tmpl := `{{range .Upstreams}}upstream app_{{.Name}} { {{range .Servers}}server {{.Address}} weight={{.Weight}}; {{end}}}{{end}}`
	got := render(t, snap(svc("user", in("user-1", 7, "", "http://127.0.0.1:8001"))), nginx.WithTemplate(tmpl))
	if got != "upstream app_user { server 127.0.0.1:8001 weight=7; }" {
		t.Fatalf("got %q", got)
	}
	if _, err := nginx.NewRenderer(nginx.WithTemplate("{{range}")); err == nil {
		t.Fatal("a template that does not parse was accepted")
	}
}

// A weight past edge.MaxWeight renders as edge.MaxWeight, the weight xDS
// gives the same instance.
func TestRender_HugeWeightsAreClamped(t *testing.T) {
	out := render(t, snap(svc("user", in("u1", 1<<32, "", "http://127.0.0.1:8001"), in("u2", 7, "", "http://127.0.0.1:8002"))))
	if !strings.Contains(out, "127.0.0.1:8001 weight=1000000 ") || !strings.Contains(out, "127.0.0.1:8002 weight=7 ") {
		t.Fatalf("weights not clamped to edge.MaxWeight:\n%s", out)
	}
}

// A host that is no host name nor IP address is never written into the
// file, even if a record carrying it got past the registry: it is
// skipped, so nginx keeps accepting the file (report j49b: a ';' made
// nginx refuse it, freezing every service at the edge).
func TestRender_AHostNginxWouldReadAsSyntaxIsSkipped(t *testing.T) {
	got := render(t, snap(svc("user", in("good", 1, "", "http://127.0.0.1:80"), in("evil", 1, "", "http://127.0.0.2;:80"))))
	if strings.Contains(got, "127.0.0.2") || !strings.Contains(got, "server 127.0.0.1:80") {
		t.Fatalf("rendered:\n%s", got)
	}
}
