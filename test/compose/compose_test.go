// Package compose checks deploy/compose: both variants load and validate
// against the Compose specification (compose-go, the library Docker
// Compose itself uses), every service has a health check and waits for
// what it needs, and — where a docker compose CLI exists — `docker compose
// config` accepts them too.
package compose

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const dir = "../../deploy/compose"

func load(t *testing.T, profile string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithProfiles([]string{profile}), cli.WithName("warren"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("profile %s: %v", profile, err)
	}
	return p
}

func TestCompose_BothVariantsValidateWithHealthChecksAndOrderedStart(t *testing.T) {
	for profile, want := range map[string]struct {
		registry string
		services []string
	}{
		"etcd":   {"etcd", []string{"etcd", "order", "user"}},
		"consul": {"consul", []string{"consul", "order-consul", "user-consul"}},
	} {
		t.Run(profile, func(t *testing.T) {
			p := load(t, profile)
			names := p.ServiceNames()
			slices.Sort(names)
			if !slices.Equal(names, want.services) {
				t.Fatalf("services %v, want %v", names, want.services)
			}
			for _, s := range p.Services {
				if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
					t.Errorf("%s has no health check", s.Name)
				}
				if s.Name == want.registry {
					continue
				}
				if got := s.Environment["WARREN_REGISTRY"]; got == nil || *got != want.registry {
					t.Errorf("%s: WARREN_REGISTRY = %v, want %s", s.Name, got, want.registry)
				}
				dep, ok := s.DependsOn[want.registry]
				if !ok || dep.Condition != types.ServiceConditionHealthy {
					t.Errorf("%s does not wait for a healthy %s: %+v", s.Name, want.registry, s.DependsOn)
				}
				if s.Deploy == nil || s.Deploy.Replicas == nil || *s.Deploy.Replicas != 2 {
					t.Errorf("%s: want 2 replicas", s.Name)
				}
			}
		})
	}
}

func TestCompose_DockerfileRunsAsNonRootOnAStaticBase(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "distroless/static", "USER 65532", "./services/..."} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func TestCompose_DockerComposeConfigAccepts(t *testing.T) {
	var cmd []string
	switch {
	case exec.Command("docker", "compose", "version").Run() == nil:
		cmd = []string{"docker", "compose"}
	case exec.Command("docker-compose", "version").Run() == nil:
		cmd = []string{"docker-compose"}
	default:
		t.Skip("no docker compose CLI on this machine; the compose-go validation above still ran")
	}
	for _, profile := range []string{"etcd", "consul"} {
		args := append(cmd[1:], "--profile", profile, "config", "-q")
		c := exec.Command(cmd[0], args...)
		c.Dir = dir
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("%s --profile %s config: %v\n%s", cmd[0], profile, err, out)
		}
	}
}
