package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// TestNew_AddsTheServiceToTheHelmChart runs svcgen new against a copy of
// the chart's values: the service becomes an entry of services (the
// chart renders its Deployment, headless Service and PDB from it; test/k8s
// validates the chart), and a second one of the same name is refused.
func TestNew_AddsTheServiceToTheHelmChart(t *testing.T) {
	p := absentServiceName(t)
	root := fakeRoot(t)
	dir, _ := chartValues(t, root)
	code, out, errOut := runCLI(t, "new", p("payment"), "--root", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, p("added payment to deploy/k8s/values.yaml")) {
		t.Errorf("output does not report the chart:\n%s", out)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "values.yaml"))
	var values struct {
		Services map[string]struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(got, &values); err != nil {
		t.Fatalf("values.yaml no longer parses: %v", err)
	}
	// The demo's user and order keep their data per Pod: one replica each
	// (deploy/k8s/values.yaml); a generated service, stateless, gets two.
	for name, replicas := range map[string]int{"user": 1, "order": 1, p("payment"): 2} {
		if s, ok := values.Services[name]; !ok || s.Replicas != replicas {
			t.Errorf("services.%s = %+v (present %t), want %d replicas", name, s, ok, replicas)
		}
	}
	os.RemoveAll(filepath.Join(root, "services", p("payment")))
	if code, _, _ := runCLI(t, "new", p("payment"), "--root", root); code == 0 {
		t.Error("a second service of the same name was added to the chart")
	}
}

// TestNew_GRPCServiceGetsItsGRPCPortInTheHelmChart: `svcgen new --grpc`
// gives the service's chart entry grpcPort (the chart renders the
// container and Service port named grpc and WARREN_GRPC_LISTEN from it),
// the port the generated main listens on by default; a service without
// --grpc gets none, so the chart publishes HTTP only for it.
func TestNew_GRPCServiceGetsItsGRPCPortInTheHelmChart(t *testing.T) {
	if want := fmt.Sprintf(":%d", gen.ChartGRPCPort); want != grpcserver.DefaultAddr {
		t.Fatalf("the chart's grpcPort %s is not grpcserver.DefaultAddr %s", want, grpcserver.DefaultAddr)
	}
	p := absentServiceName(t)
	root := fakeRoot(t)
	linkBin(t, root)
	dir, b := chartValues(t, root)
	if code, out, errOut := runCLI(t, "new", p("payment"), "--grpc", "--root", root); code != 0 {
		t.Fatalf("svcgen new --grpc: exit %d\n%s%s (needs `make protoc`)", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "new", p("payment")+"-http", "--root", root); code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "values.yaml"))
	var values struct {
		Services map[string]struct {
			Replicas int `yaml:"replicas"`
			GRPCPort int `yaml:"grpcPort"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(got, &values); err != nil {
		t.Fatalf("values.yaml no longer parses: %v", err)
	}
	for name, want := range map[string]struct{ replicas, port int }{p("payment"): {2, gen.ChartGRPCPort}, p("payment") + "-http": {2, 0}, "user": {1, 9090}} {
		if s, ok := values.Services[name]; !ok || s.Replicas != want.replicas || s.GRPCPort != want.port {
			t.Errorf("services.%s = %+v (present %t), want %d replicas and grpcPort %d", name, s, ok, want.replicas, want.port)
		}
	}

	// gen adds a service missing from the chart the same way.
	os.WriteFile(filepath.Join(dir, "values.yaml"), b, 0o644)
	if code, out, errOut := runCLI(t, "gen", p("payment"), "--no-check", "--root", root); code != 0 {
		t.Fatalf("svcgen gen: exit %d\n%s%s", code, out, errOut)
	}
	got, _ = os.ReadFile(filepath.Join(dir, "values.yaml"))
	values.Services = nil
	if err := yaml.Unmarshal(got, &values); err != nil {
		t.Fatalf("values.yaml no longer parses: %v", err)
	}
	if s := values.Services[p("payment")]; s.Replicas != 2 || s.GRPCPort != gen.ChartGRPCPort {
		t.Errorf("after gen, services.%s = %+v, want 2 replicas and grpcPort %d", p("payment"), s, gen.ChartGRPCPort)
	}
}

// TestGen_ServiceThatGainsGRPCGetsGRPCPortInItsChartEntry: a service
// made without --grpc has a chart entry without grpcPort; once its
// Service gains //warren:grpc, `svcgen gen` adds grpcPort to that entry
// (else the chart would publish HTTP only for a service serving gRPC),
// keeping what the user wrote in the entry, and leaving the rest of the
// file alone. A second gen changes nothing.
func TestGen_ServiceThatGainsGRPCGetsGRPCPortInItsChartEntry(t *testing.T) {
	p := absentServiceName(t)
	root := fakeRoot(t)
	linkBin(t, root)
	dir, _ := chartValues(t, root)
	values := filepath.Join(dir, "values.yaml")
	if code, out, errOut := runCLI(t, "new", p("payment"), "--root", root); code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	b, _ := os.ReadFile(values)
	entry := "\n  " + p("payment") + ":\n    replicas: 2\n"
	if !strings.Contains(string(b), entry) {
		t.Fatalf("values.yaml has no entry %q:\n%s", entry, b)
	}
	// The user's edits to the entry: a comment, replicas and a nested map.
	edited := "\n  " + p("payment") + ":\n    # payment keeps three.\n    replicas: 3\n    env:\n      PAYMENT_MODE: live\n"
	b = []byte(strings.Replace(string(b), entry, edited, 1))
	os.WriteFile(values, b, 0o644)

	svc := filepath.Join(root, "services", p("payment"), "service.go")
	src, err := os.ReadFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), "\ntype Service interface", "\n//\n//warren:grpc\ntype Service interface", 1))
	os.WriteFile(svc, src, 0o644)
	code, out, errOut := runCLI(t, "gen", p("payment"), "--no-check", "--root", root)
	if code != 0 {
		t.Fatalf("svcgen gen: exit %d\n%s%s (needs `make protoc`)", code, out, errOut)
	}
	if !strings.Contains(out, "grpcPort") {
		t.Errorf("gen does not report the grpcPort it added:\n%s", out)
	}
	got, _ := os.ReadFile(values)
	want := strings.Replace(string(b), edited, edited+"    grpcPort: 9090\n", 1)
	if string(got) != want {
		t.Errorf("values.yaml after gen:\n%s\nwant:\n%s", got, want)
	}
	if code, out, errOut := runCLI(t, "gen", p("payment"), "--no-check", "--root", root); code != 0 {
		t.Fatalf("second svcgen gen: exit %d\n%s%s", code, out, errOut)
	}
	if again, _ := os.ReadFile(values); string(again) != want {
		t.Errorf("a second gen changed values.yaml:\n%s", again)
	}
}

// linkBin links the repository's bin/ (protoc: make protoc) into root.
func linkBin(t *testing.T, root string) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
}

// chartValues copies the repository's chart values into root's
// deploy/k8s and returns that directory and the values.
func chartValues(t *testing.T, root string) (string, []byte) {
	t.Helper()
	dir := filepath.Join(root, "deploy", "k8s")
	os.MkdirAll(dir, 0o755)
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "k8s", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "values.yaml"), b, 0o644)
	return dir, b
}
