package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestNew_AddsTheServiceToTheHelmChart runs svcgen new against a copy of
// the chart's values: the service becomes an entry of services (the
// chart renders its Deployment, headless Service and PDB from it; test/k8s
// validates the chart), and a second one of the same name is refused.
func TestNew_AddsTheServiceToTheHelmChart(t *testing.T) {
	p := absentServiceName(t)
	root := fakeRoot(t)
	dir := filepath.Join(root, "deploy", "k8s")
	os.MkdirAll(dir, 0o755)
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "k8s", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "values.yaml"), b, 0o644)
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
	for _, name := range []string{"user", "order", p("payment")} {
		if s, ok := values.Services[name]; !ok || s.Replicas != 2 {
			t.Errorf("services.%s = %+v (present %t), want 2 replicas", name, s, ok)
		}
	}
	os.RemoveAll(filepath.Join(root, "services", p("payment")))
	if code, _, _ := runCLI(t, "new", p("payment"), "--root", root); code == 0 {
		t.Error("a second service of the same name was added to the chart")
	}
}
