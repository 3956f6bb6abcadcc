//go:build compose

package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The compose deployment, run for real: the images are built FROM scratch
// from the staged context (deploy/compose/stage.sh), and each profile is
// brought up with docker-compose through with-podman.sh — the commands
// `make compose-up` runs — then the demo flow is walked through the
// published ports, one user container is killed and another stopped under
// load, and `down` must leave nothing behind. Last, compose files with a
// wrong health check command must make the same bring-up fail.
//
// Every step has its own limit and the whole test a deadline shorter than
// go test's, so it fails (and cleans up) instead of hanging. Run it with
// `make compose-test` (or `make test`, which runs it after the other
// packages): it builds with -tags compose.
func TestCompose_RunsForReal(t *testing.T) {
	requireEngine(t)
	ctx := testContext(t)
	e := newEngine(t)

	timings := map[string]time.Duration{}
	start := time.Now()
	buildImages(ctx, t, e, timings)

	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) { runProfile(ctx, t, e, p, timings) })
	}

	// A wrong health check command: the user service's (order waits for
	// it: compose's depends_on fails) and the order service's (nothing
	// waits for it: with-podman.sh --wait-healthy fails).
	for _, svc := range []string{"user", "order"} {
		t.Run("broken-healthcheck-"+svc, func(t *testing.T) {
			brokenHealthcheckFails(ctx, t, e, svc, timings)
		})
	}
	// A service that exits at start, restarted again and again.
	t.Run("crash-loop", func(t *testing.T) { crashLoopFails(ctx, t, e, timings) })
	t.Logf("timings: %s; total %s", fmtTimings(timings), time.Since(start).Round(time.Second))
}

// testContext ends 3 minutes before go test's -timeout would, leaving the
// cleanups time to run.
func testContext(t *testing.T) context.Context {
	deadline := time.Now().Add(28 * time.Minute)
	if d, ok := t.Deadline(); ok {
		deadline = d.Add(-3 * time.Minute)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func fmtTimings(m map[string]time.Duration) string {
	var parts []string
	for _, k := range []string{"stage", "build",
		"etcd/up", "etcd/flow", "etcd/kill", "etcd/stop", "etcd/roll", "etcd/registry", "etcd/down",
		"consul/up", "consul/flow", "consul/kill", "consul/stop", "consul/roll", "consul/registry", "consul/down",
		"broken-user", "broken-order", "crash-loop"} {
		if d, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", k, d.Round(100*time.Millisecond)))
		}
	}
	return strings.Join(parts, ", ")
}

// buildImages stages the context and builds the three images with a tag
// of this run's own; they are removed when the test ends.
func buildImages(ctx context.Context, t *testing.T, e *engine, timings map[string]time.Duration) {
	t.Helper()
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, img := range []string{"services", "etcd", "consul"} {
			ref := "warren/" + img + ":" + e.tag
			if out, err := e.podman(cctx, "image", "exists", ref); err == nil {
				if _, err := e.podman(cctx, "rmi", "-f", ref); err != nil {
					t.Errorf("remove image %s: %v", ref, err)
				}
			} else if out != "" {
				t.Logf("image exists %s: %s", ref, out)
			}
		}
	})
	t0 := time.Now()
	if _, err := e.run(ctx, 20*time.Minute, nil, "deploy/compose/stage.sh", e.imageDir); err != nil {
		t.Fatal(err)
	}
	timings["stage"] = time.Since(t0)
	t0 = time.Now()
	if _, err := e.run(ctx, 10*time.Minute, []string{"COMPOSE_PROJECT_NAME=" + uniqueName("warrentestbuild")},
		"deploy/compose/with-podman.sh", "docker-compose", "-f", "deploy/compose/compose.yaml",
		"--profile", "etcd", "--profile", "consul", "build"); err != nil {
		t.Fatal(err)
	}
	timings["build"] = time.Since(t0)
	for _, img := range []string{"services", "etcd", "consul"} {
		out, err := e.podman(ctx, "image", "inspect", "--format", "{{.Config.User}}", "warren/"+img+":"+e.tag)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != "65532:65532" {
			t.Errorf("image %s runs as %q, want 65532:65532", img, got)
		}
	}
}

func runProfile(ctx context.Context, t *testing.T, e *engine, p profile, timings map[string]time.Duration) {
	s := newStack(e, p)
	s.cleanup(t)

	t0 := time.Now()
	if _, err := s.up(ctx, t); err != nil {
		t.Fatal(err)
	}
	timings[p.name+"/up"] = time.Since(t0)

	cs, err := s.containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkContainers(t, cs, p)
	if t.Failed() {
		t.FailNow()
	}
	var users, orders [2]string
	for i := range 2 {
		for _, x := range []struct {
			svc string
			url *string
		}{{p.user, &users[i]}, {p.order, &orders[i]}} {
			c, err := replica(cs, x.svc, i+1)
			if err != nil {
				t.Fatal(err)
			}
			if *x.url, err = c.url(8080); err != nil {
				t.Fatal(err)
			}
		}
	}

	t0 = time.Now()
	userID := demoFlow(ctx, t, users, orders)
	if p.registry == "consul" {
		c, err := replica(cs, "consul", 1)
		if err != nil {
			t.Fatal(err)
		}
		consulURL, err := c.url(8500)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		for _, s := range servicesOf(t) {
			want[s] = 2 // every service, two replicas
		}
		checkConsulCatalog(ctx, t, consulURL, want)
	}
	checkOperating(ctx, t, s, cs, orders)
	timings[p.name+"/flow"] = time.Since(t0)
	if t.Failed() {
		t.FailNow()
	}

	t0 = time.Now()
	killUnderLoad(ctx, t, s, cs, orders, userID)
	timings[p.name+"/kill"] = time.Since(t0)

	t0 = time.Now()
	stopUnderLoad(ctx, t, s, cs, orders, userID)
	timings[p.name+"/stop"] = time.Since(t0)
	waitFailsOnExited(ctx, t, s, cs)

	t0 = time.Now()
	rollingRestart(ctx, t, s, cs, orders, userID)
	timings[p.name+"/roll"] = time.Since(t0)

	t0 = time.Now()
	registryOutage(ctx, t, s, cs, users, orders, userID)
	timings[p.name+"/registry"] = time.Since(t0)

	t0 = time.Now()
	s.downAndCheck(ctx, t)
	timings[p.name+"/down"] = time.Since(t0)
}

// checkContainers: the registry and two replicas of each service, all
// running, healthy, as a non-root user, publishing only on 127.0.0.1.
func checkContainers(t *testing.T, cs []container, p profile) {
	t.Helper()
	count := map[string]int{}
	for _, c := range cs {
		count[c.service()]++
		if c.State.Status != "running" || c.health() != "healthy" {
			t.Errorf("%s: %s, health %q; want running and healthy", c.Name, c.State.Status, c.health())
		}
		if uid, err := processUID(c.State.Pid); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		} else if uid != "65532" {
			t.Errorf("%s: process runs as uid %s, want 65532", c.Name, uid)
		}
		published := 0
		for port, binds := range c.NetworkSettings.Ports {
			for _, b := range binds {
				if b.HostPort == "" {
					continue
				}
				published++
				if b.HostIp != "127.0.0.1" {
					t.Errorf("%s: %s published on %q; want 127.0.0.1 only", c.Name, port, b.HostIp)
				}
			}
		}
		want := 2 // 8080 HTTP, 9100 /metrics
		if c.service() == p.registry {
			want = len(p.registryPorts)
		}
		if published != want {
			t.Errorf("%s publishes %d ports, want %d: %v", c.Name, published, want, c.NetworkSettings.Ports)
		}
	}
	// Two replicas of every service of the repository (svcgen new adds
	// them so), one registry.
	want := map[string]int{}
	for _, n := range wantServices(t, p.registry) {
		want[n] = 2
	}
	want[p.registry] = 1
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("containers per service %v, want %v", count, want)
	}
}

// processUID reads the real uid of a container's process on the host
// (rootful podman maps no user namespace: the image's USER is the uid).
func processUID(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("no Uid line in /proc/%d/status", pid)
}

// killUnderLoad SIGKILLs the process of user replica 1 from the host — a
// crash, not a `stop`: its registration stays until the etcd lease or the
// Consul TTL check expires (10 s), so orders keep being routed to it and
// must be retried on the other replica. No order may fail. The restart
// policy (unless-stopped) then brings the container back and it must turn
// healthy again.
func killUnderLoad(ctx context.Context, t *testing.T, s *stack, cs []container, orders [2]string, userID string) {
	victim, err := replica(cs, s.profile.user, 1)
	if err != nil {
		t.Fatal(err)
	}
	l := startLoad(ctx, orders, userID)
	defer l.stop()
	if err := l.waitOK(ctx, 20, time.Minute); err != nil {
		t.Fatalf("before the kill: %v", err)
	}
	killedAt := time.Now()
	if err := syscall.Kill(victim.State.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (pid %d): %v", victim.Name, victim.State.Pid, err)
	}
	l.mark()
	// Past the 10 s lease/TTL, so the window covers the stale record's
	// whole life, and at least 50 orders placed after the kill.
	if !sleepCtx(ctx, time.Until(killedAt.Add(15*time.Second))) {
		t.Fatal(ctx.Err())
	}
	if err := l.waitOK(ctx, 50, time.Minute); err != nil {
		t.Errorf("after the kill: %v", err)
	}
	res := l.stop()
	t.Logf("SIGKILL of %s under load: %s", victim.Name, res)
	if res.failed > 0 {
		t.Errorf("%d orders failed while %s was killed; first errors: %s", res.failed, victim.Name, strings.Join(res.errs, "; "))
	}

	// The restart policy restarts a crashed container.
	waitRestarted(ctx, t, s, s.profile.user, victim.Name, "")
	if err := s.waitHealthy(ctx); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}

// stopUnderLoad stops user replica 2 the way `docker compose stop` and
// `down` do — SIGTERM, up to stop_grace_period — under load: the service
// withdraws from discovery, keeps serving through the grace period, drains
// and exits 0, and no order fails.
func stopUnderLoad(ctx context.Context, t *testing.T, s *stack, cs []container, orders [2]string, userID string) {
	victim, err := replica(cs, s.profile.user, 2)
	if err != nil {
		t.Fatal(err)
	}
	l := startLoad(ctx, orders, userID)
	defer l.stop()
	if err := l.waitOK(ctx, 20, time.Minute); err != nil {
		t.Fatalf("before the stop: %v", err)
	}
	t0 := time.Now()
	if _, err := s.e.podman(ctx, "stop", "--time", "35", victim.ID); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	l.mark()
	if err := l.waitOK(ctx, 30, time.Minute); err != nil {
		t.Errorf("after the stop: %v", err)
	}
	res := l.stop()
	t.Logf("SIGTERM of %s under load: stopped in %s; %s", victim.Name, took.Round(time.Millisecond), res)
	if res.failed > 0 {
		t.Errorf("%d orders failed while %s stopped; first errors: %s", res.failed, victim.Name, strings.Join(res.errs, "; "))
	}

	cs2, err := s.containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := replica(cs2, s.profile.user, 2)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Status != "exited" || c.State.ExitCode != 0 {
		t.Errorf("%s after SIGTERM: %s, exit code %d; want exited 0 (137 would be the SIGKILL after the grace period)", c.Name, c.State.Status, c.State.ExitCode)
	}
	logs, err := s.e.podman(ctx, "logs", victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := phasesInOrder(logs, "phase=withdraw", "phase=grace", "phase=drain", "phase=release", "phase=exit err=none"); err != nil {
		t.Errorf("%s shutdown: %v\n%s", c.Name, err, tail(logs, 15))
	}
}

// phasesInOrder checks that each marker appears in logs after the one
// before it.
func phasesInOrder(logs string, markers ...string) error {
	at := 0
	for _, m := range markers {
		i := strings.Index(logs[at:], m)
		if i < 0 {
			return fmt.Errorf("no %q after the earlier phases", m)
		}
		at += i + len(m)
	}
	return nil
}

// brokenHealthcheckFails brings the etcd profile up with an override
// giving svc a health check command that cannot succeed (a misspelt
// subcommand: `user healtcheck` exits 2). The bring-up must fail, and say which container is
// unhealthy, instead of reporting a running stack.
func brokenHealthcheckFails(ctx context.Context, t *testing.T, e *engine, svc string, timings map[string]time.Duration) {
	override := filepath.Join(t.TempDir(), "broken.yaml")
	// retries: 3 instead of 15 only makes the failure come sooner; the
	// cause is the command.
	yaml := fmt.Sprintf("services:\n  %s:\n    healthcheck:\n      test: [\"CMD\", %q, \"healtcheck\"]\n      retries: 3\n", svc, svc)
	if err := os.WriteFile(override, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStack(e, profiles[0], override)
	s.cleanup(t)
	t0 := time.Now()
	out, err := s.up(ctx, t)
	timings["broken-"+svc] = time.Since(t0)
	if err == nil {
		t.Fatalf("up with a broken %s health check succeeded:\n%s", svc, tail(out, 30))
	}
	if ctx.Err() != nil || !strings.Contains(out, "unhealthy") {
		t.Fatalf("up failed, but not because %s is unhealthy: %v", svc, err)
	}
	t.Logf("broken %s health check: up failed after %s, as it must: %s", svc, time.Since(t0).Round(time.Second), lastLine(out))
	s.downAndCheck(ctx, t)
}

func lastLine(s string) string {
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.Contains(l, "unhealthy") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// waitRestarted waits, 90 s at most, until replica 1 of service (the
// container name) runs again after a kill, restarted by its policy; why
// says what a failure means.
func waitRestarted(ctx context.Context, t *testing.T, s *stack, service, name, why string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		cs, err := s.containers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := replica(cs, service, 1)
		if err == nil && c.RestartCount >= 1 && c.State.Status == "running" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not restarted 90 s after the kill (restarts %d, %s)%s", name, c.RestartCount, c.State.Status, why)
		}
		if !sleepCtx(ctx, 2*time.Second) {
			t.Fatal(ctx.Err())
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
