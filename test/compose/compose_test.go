// Package compose checks deploy/compose. Without build tags: both
// variants load and validate against the Compose specification
// (compose-go, the library Docker Compose itself uses), every service has a
// health check and waits for what it needs, ports are published on
// 127.0.0.1 only, the images are FROM scratch and non-root, and — where a
// docker compose CLI exists — `docker compose config` accepts them too.
//
// With -tags compose (make compose-test; make test runs it), the deployment
// runs for real under podman: live_test.go.
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

	"github.com/warren-mesh/warren/framework/devmesh"
)

const dir = "../../deploy/compose"

func load(t *testing.T, profile string) *types.Project {
	t.Helper()
	return loadFiles(t, profile, "compose.yaml")
}

func loadFiles(t *testing.T, profile string, files ...string) *types.Project {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(dir, f))
	}
	opts, err := cli.NewProjectOptions(paths,
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

// wantServices is every service of the repository in one profile: the
// registry, then each services/NAME as NAME (etcd) or NAME-consul, as
// `svcgen new` adds them. Derived, so a new service needs no edit here.
func wantServices(t *testing.T, registry string) []string {
	t.Helper()
	out := []string{registry}
	for _, n := range servicesOf(t) {
		if registry == "consul" {
			n += "-consul"
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// servicesOf lists the repository's services (services/NAME with a main),
// as compose runs them.
func servicesOf(t *testing.T) []string {
	t.Helper()
	names, err := devmesh.ServiceDirs(filepath.Join(dir, "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestCompose_BothVariantsValidateWithHealthChecksAndOrderedStart(t *testing.T) {
	for profile, want := range map[string]struct {
		registry string
		services []string
	}{
		"etcd":   {"etcd", wantServices(t, "etcd")},
		"consul": {"consul", wantServices(t, "consul")},
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
				// The registry too: nothing else brings it back after a
				// crash (report j46a, finding 8).
				if s.Restart != types.RestartPolicyUnlessStopped {
					t.Errorf("%s: restart %q, want unless-stopped", s.Name, s.Restart)
				}
				if s.Name == want.registry {
					continue
				}
				// A registry outage must not fail every service's health
				// check at once (docs/lifecycle.md; report j46a, finding 3).
				if s.HealthCheck != nil && !strings.Contains(strings.Join(s.HealthCheck.Test, " "), "healthcheck --exclude registered") {
					t.Errorf("%s: health check %q does not exclude registered", s.Name, s.HealthCheck.Test)
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

// TestCompose_ImagesAreFromScratchAndNonRoot: the images compose.yaml
// builds need no pull (every stage FROM scratch, static binaries staged by
// stage.sh) and run as the non-root user 65532; the public-base Dockerfile
// builds the same targets, also as 65532.
func TestCompose_ImagesAreFromScratchAndNonRoot(t *testing.T) {
	targets := func(file string) map[string]string { // target -> its text
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		cur := ""
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == "FROM" {
				cur = ""
				if len(f) == 4 && strings.EqualFold(f[2], "AS") {
					cur = f[3]
				}
				out[cur] += line + "\n"
				continue
			}
			out[cur] += line + "\n"
		}
		return out
	}
	want := []string{"consul", "etcd", "services"}
	scratch := targets("Containerfile")
	for _, name := range want {
		body, ok := scratch[name]
		if !ok {
			t.Errorf("Containerfile has no target %s", name)
			continue
		}
		if !strings.HasPrefix(body, "FROM scratch AS "+name) {
			t.Errorf("Containerfile target %s is not FROM scratch: %q", name, strings.SplitN(body, "\n", 2)[0])
		}
		if !strings.Contains(body, "USER 65532:65532") {
			t.Errorf("Containerfile target %s does not switch to user 65532", name)
		}
	}
	for name, body := range scratch {
		if name != "" && !slices.Contains(want, name) && !strings.HasPrefix(body, "FROM scratch") {
			t.Errorf("Containerfile stage %s pulls a base image", name)
		}
	}
	public := targets("Dockerfile")
	for _, name := range want {
		if body, ok := public[name]; !ok || !strings.Contains(body, "USER 65532:65532") {
			t.Errorf("Dockerfile target %s missing or not run as 65532", name)
		}
	}
	for _, f := range []string{"stage.sh", "Dockerfile"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "CGO_ENABLED=0"); n < 2 {
			t.Errorf("%s builds %d binaries with CGO_ENABLED=0, want the services and etcd", f, n)
		}
	}
	for _, f := range []string{"image/passwd", "image/group"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), ":65532:") {
			t.Errorf("%s has no entry for 65532", f)
		}
	}
}

// TestCompose_PublishesOnlyOnLoopback: every published port of both
// variants is bound to 127.0.0.1, with a host port the engine picks (so
// stacks run side by side and nothing is exposed beyond this machine).
func TestCompose_PublishesOnlyOnLoopback(t *testing.T) {
	for _, profile := range []string{"etcd", "consul"} {
		p := load(t, profile)
		for _, s := range p.Services {
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("%s: port %d published on %q, want 127.0.0.1", s.Name, port.Target, port.HostIP)
				}
				if port.Published != "" {
					t.Errorf("%s: port %d published on fixed host port %s; let the engine pick one", s.Name, port.Target, port.Published)
				}
			}
		}
	}
}

// TestCompose_PublicVariantBuildsTheSameTargets: compose.public.yaml only
// swaps the build (repository root, Dockerfile); targets, images and
// everything else stay those of compose.yaml.
func TestCompose_PublicVariantBuildsTheSameTargets(t *testing.T) {
	for _, profile := range []string{"etcd", "consul"} {
		base := load(t, profile)
		pub := loadFiles(t, profile, "compose.yaml", "compose.public.yaml")
		for name, s := range pub.Services {
			b := base.Services[name]
			if s.Build == nil || b.Build == nil {
				t.Fatalf("%s: no build section", name)
			}
			if s.Build.Dockerfile != "deploy/compose/Dockerfile" || s.Build.Target != b.Build.Target || s.Image != b.Image {
				t.Errorf("%s: public build %+v image %s; base target %s image %s", name, s.Build, s.Image, b.Build.Target, b.Image)
			}
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
	// docker-compose 1.x wants the build context to exist.
	image := t.TempDir()
	for _, files := range [][]string{{"compose.yaml"}, {"compose.yaml", "compose.public.yaml"}} {
		for _, profile := range []string{"etcd", "consul"} {
			args := slices.Clone(cmd[1:])
			for _, f := range files {
				args = append(args, "-f", f)
			}
			args = append(args, "--profile", profile, "config", "-q")
			c := exec.Command(cmd[0], args...)
			c.Dir = dir
			c.Env = append(os.Environ(), "WARREN_IMAGE_CONTEXT="+image)
			if out, err := c.CombinedOutput(); err != nil {
				t.Errorf("%s %v: %v\n%s", cmd[0], args, err, out)
			}
		}
	}
}
