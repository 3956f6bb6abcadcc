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

// The operating steps of deploy/compose/README.md ("Operating it"), run on
// a live stack after the kill and stop steps of runProfile.

// waitFailsOnExited: user replica 2 exited 0 (stopUnderLoad). The health
// wait must say so at once, naming the container and its exit code,
// instead of waiting for its timeout and printing podman's stale
// "(healthy)" of the dead container.
func waitFailsOnExited(ctx context.Context, t *testing.T, s *stack, cs []container) {
	victim, err := replica(cs, s.profile.user, 2)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	out, err := s.e.run(ctx, 3*time.Minute, []string{"COMPOSE_PROJECT_NAME=" + s.project, "WAIT_HEALTHY_TIMEOUT=90"},
		"deploy/compose/with-podman.sh", "--wait-healthy", "true")
	took := time.Since(t0)
	want := "not running: " + victim.Name + " exited (exit code 0)"
	if err == nil || !strings.Contains(out, want) || took > 60*time.Second {
		t.Errorf("--wait-healthy with %s exited: took %s, err %v; want a failure within 60 s saying %q:\n%s",
			victim.Name, took.Round(time.Second), err, want, tail(out, 10))
	}
}

// rollingRestart starts the stopped replica again, then restarts the user
// service with `make compose-restart` under load: one replica at a time,
// each back in discovery before the next leaves, so no order fails (both
// replicas stopping at once — `docker-compose restart user` — failed
// hundreds: report j46a, finding 4).
func rollingRestart(ctx context.Context, t *testing.T, s *stack, cs []container, orders [2]string, userID string) {
	stopped, err := replica(cs, s.profile.user, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.e.podman(ctx, "start", stopped.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.waitHealthy(ctx); err != nil {
		t.Fatalf("after starting %s again: %v", stopped.Name, err)
	}
	l := startLoad(ctx, orders, userID)
	defer l.stop()
	if err := l.waitOK(ctx, 20, time.Minute); err != nil {
		t.Fatalf("before the restart: %v", err)
	}
	t0 := time.Now()
	out, err := s.make(ctx, 6*time.Minute, "compose-restart", "SERVICE="+s.profile.user)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	l.mark()
	if err := l.waitOK(ctx, 30, time.Minute); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	res := l.stop()
	t.Logf("make compose-restart SERVICE=%s under load: %s; %s", s.profile.user, took.Round(100*time.Millisecond), res)
	if res.failed > 0 {
		t.Errorf("%d orders failed during the rolling restart; first errors: %s\n%s", res.failed, strings.Join(res.errs, "; "), tail(out, 10))
	}
	if n := strings.Count(out, "compose-restart: "+s.project+"_"+s.profile.user+"_"); n != 2 {
		t.Errorf("compose-restart restarted %d replicas, want 2:\n%s", n, out)
	}
}

// registryOutage stops the registry: the services keep serving, their
// "registered" check fails (the registration is being retried), and the
// containers' health check — `SERVICE healthcheck --exclude registered` —
// must still pass, or a registry outage would turn the whole fleet
// unhealthy (report j46a, finding 3). Then the registry is started, and
// SIGKILLed: its restart policy must bring it back (finding 8), the stack
// turns healthy and orders are placed through discovery again.
func registryOutage(ctx context.Context, t *testing.T, s *stack, cs []container, users, orders [2]string, userID string) {
	reg, err := replica(cs, s.profile.registry, 1)
	if err != nil {
		t.Fatal(err)
	}
	probe, err := replica(cs, s.profile.user, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.e.podman(ctx, "stop", "--time", "10", reg.ID); err != nil {
		t.Fatal(err)
	}
	// Until "registered" fails on user replica 1 (etcd: the lease's
	// keepalive ends within its 10 s TTL).
	registeredFailed := false
	deadline := time.Now().Add(60 * time.Second)
	for !registeredFailed && time.Now().Before(deadline) {
		var rb struct {
			Checks map[string]struct{ OK bool }
		}
		if _, err := call(ctx, "GET", users[0]+"/readyz", nil, &rb); err == nil {
			if c, ok := rb.Checks["registered"]; ok && !c.OK {
				registeredFailed = true
				break
			}
		}
		if !sleepCtx(ctx, time.Second) {
			t.Fatal(ctx.Err())
		}
	}
	switch {
	case registeredFailed:
		out, err := s.e.podman(ctx, "healthcheck", "run", probe.ID)
		if err != nil {
			t.Errorf("with the registry stopped, %s's health check fails (%v); the engine would take the whole fleet out for a registry outage", probe.Name, err)
		} else {
			t.Logf("registry stopped: registered fails on %s, its health check says %q", probe.Name, strings.TrimSpace(out))
		}
	case s.profile.registry == "etcd":
		t.Errorf("registered did not fail on %s within 60 s of stopping etcd", probe.Name)
	default:
		t.Logf("registered did not fail on %s within 60 s of stopping %s; health check under the outage not judged", probe.Name, reg.Name)
	}
	var o order
	body := map[string]any{"user_id": userID, "items": []item{{"pen", 1, 150}}}
	if code, err := call(ctx, "POST", orders[0]+"/orders", body, &o); err != nil || code != 201 {
		t.Errorf("order with the registry stopped: %d %+v %v; want 201 from the last known instances", code, o, err)
	}

	if _, err := s.e.podman(ctx, "start", reg.ID); err != nil {
		t.Fatal(err)
	}
	cs2, err := s.containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg, err = replica(cs2, s.profile.registry, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(reg.State.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (pid %d): %v", reg.Name, reg.State.Pid, err)
	}
	waitRestarted(ctx, t, s, s.profile.registry, reg.Name, ": the registry needs a restart policy")
	if err := s.waitHealthy(ctx); err != nil {
		t.Fatalf("after the registry's restart: %v", err)
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		code, err := call(ctx, "POST", orders[1]+"/orders", body, &o)
		if err == nil && code == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no order placed within 90 s of the registry's restart: last %d %+v %v", code, o, err)
		}
		if !sleepCtx(ctx, time.Second) {
			t.Fatal(ctx.Err())
		}
	}
}

// checkOperating: each replica's /metrics is published (on 127.0.0.1, like
// every port) and answers Warren's metrics (finding 5); the documented
// port command through with-podman.sh prints order replica 1's port
// (finding 6); compose-up refuses to add the other profile's mesh to this
// project, and lets this one's through (finding 7).
func checkOperating(ctx context.Context, t *testing.T, s *stack, cs []container, orders [2]string) {
	for _, c := range cs {
		if c.service() == s.profile.registry {
			continue
		}
		u, err := c.url(9100)
		if err != nil {
			t.Error(err)
			continue
		}
		var body string
		code, err := callText(ctx, u+"/metrics", &body)
		if err != nil || code != 200 || !strings.Contains(body, "warren_") {
			t.Errorf("%s /metrics: %d %v; want 200 with warren_ metrics", c.Name, code, err)
		}
	}
	out, err := s.compose(ctx, 2*time.Minute, false, "port", "--index=1", s.profile.order, "8080")
	if err != nil || "http://"+strings.TrimSpace(out) != orders[0] {
		t.Errorf("port --index=1 %s 8080 through with-podman.sh: %q %v; want %s", s.profile.order, out, err, orders[0])
	}
	other := "consul"
	if s.profile.name == "consul" {
		other = "etcd"
	}
	out, err = s.make(ctx, time.Minute, "compose-profile-check", "REGISTRY="+other)
	if err == nil || !strings.Contains(out, "make compose-down COMPOSE_PROJECT="+s.project) {
		t.Errorf("compose-up REGISTRY=%s on a running %s stack is not refused: %v\n%s", other, s.profile.name, err, out)
	}
	if out, err := s.make(ctx, time.Minute, "compose-profile-check"); err != nil {
		t.Errorf("compose-profile-check of the running profile: %v\n%s", err, out)
	}
}

// crashLoopFails brings the etcd profile up with the user service unable
// to start (an unknown flag: it exits 2 at once, and the restart policy
// starts it again and again). The bring-up must fail soon, naming a user
// container and why it died, instead of reporting a healthy stack (report
// j46a, finding 2); and make compose-down must still leave nothing.
func crashLoopFails(ctx context.Context, t *testing.T, e *engine, timings map[string]time.Duration) {
	override := filepath.Join(t.TempDir(), "crash.yaml")
	if err := os.WriteFile(override, []byte("services:\n  user:\n    command: [\"user\", \"--no-such-flag\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStack(e, profiles[0], override)
	s.cleanup(t)
	t0 := time.Now()
	out, err := s.up(ctx, t)
	took := time.Since(t0)
	timings["crash-loop"] = took
	if err == nil {
		t.Fatalf("up with a crash-looping user service succeeded:\n%s", tail(out, 30))
	}
	named := fmt.Sprintf("%s_user_", s.project)
	if ctx.Err() != nil || !strings.Contains(out, named) || !strings.Contains(out, "unknown flag --no-such-flag") || took > 150*time.Second {
		t.Fatalf("up failed after %s, but not saying a %s* container crash-loops and why: %v\n%s", took.Round(time.Second), named, err, tail(out, 30))
	}
	t.Logf("crash-looping user: up failed after %s, as it must: %s", took.Round(time.Second), firstLine(out, "restarting:", "unhealthy"))

	// A compose command that fails on its own (podman's start of a
	// container that crashed at once can fail with just "read
	// /proc/PID/cgroup: no such process") must still get the dead
	// containers named: `false` stands in for it, with the stack above
	// crash-looping.
	out, err = s.e.run(ctx, 2*time.Minute, []string{"COMPOSE_PROJECT_NAME=" + s.project},
		"deploy/compose/with-podman.sh", "--wait-healthy", "false")
	if err == nil || !strings.Contains(out, "false failed; "+named) || !strings.Contains(out, "unknown flag --no-such-flag") {
		t.Errorf("--wait-healthy false with %s* crash-looping: err %v; want a failure naming it and why it died:\n%s", named, err, tail(out, 10))
	}
	s.downAndCheck(ctx, t)
}

func firstLine(s string, subs ...string) string {
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}
