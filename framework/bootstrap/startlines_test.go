package bootstrap

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The exit line of a failed start-up names the instance as every other
// line does (report j57b F10: `msg=exit err="self-check failed: …"` had no
// id=): here a self-check against an advertised port nothing listens on.
func TestRun_ExitLineOfAFailedStartNamesTheInstance(t *testing.T) {
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + freePort(t), "--advertise", "127.0.0.1:" + freePort(t), "--grace", "0s"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // ends a start that wrongly succeeds
	defer cancel()
	var out bytes.Buffer
	if code := Run(ctx, "svc", "1", args, &out, hello, toys); code != 1 {
		t.Fatalf("exit code %d, want 1:\n%s", code, &out)
	}
	listen := regexp.MustCompile(`phase=listen.* id=(\S+)|id=(\S+) .*phase=listen`).FindStringSubmatch(out.String())
	if listen == nil {
		t.Fatalf("no phase=listen line with id=:\n%s", &out)
	}
	id := listen[1] + listen[2]
	if id == "-" {
		t.Fatalf("the listen line has no instance ID:\n%s", &out)
	}
	var exit string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "msg=exit") {
			exit = l
		}
	}
	if !strings.Contains(exit, "self-check failed") || !strings.Contains(exit, " id="+id+" ") {
		t.Errorf("exit line %q: want the self-check error and id=%s", exit, id)
	}
}

// An instance deployed with a staging --etcd-prefix or a wrong
// WARREN_DATA_DIR (a variable: not even in /debug/pprof/cmdline) logged
// nothing that showed it (report j57b F1, F8). Its start lines now say
// what differs from the defaults and where each value came from, with
// secrets masked, and where it registered: the etcd endpoints and key.
func TestRun_StartLinesSayWhatIsConfiguredAndWhereItRegistered(t *testing.T) {
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dataDir := t.TempDir()
	t.Setenv("WARREN_DATA_DIR", dataDir)
	t.Setenv("WARREN_API_TOKEN", "s3cr3t-t0ken")
	var own struct {
		APIToken string `setting:"api-token" help:"token of the payment provider"`
	}
	port := freePort(t)
	args := []string{"--registry", "etcd", "--etcd-endpoints", srv.Endpoints()[0], "--etcd-prefix", "warren-staging",
		"--listen", "127.0.0.1:" + port, "--grace", "0s", "--withdraw-timeout", "2s", "--self-check=true"}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, "svc", "1", args, out, hello, WithRegistries(etcd.Backend()), WithSettings(&own))
	}()
	for !strings.Contains(out.String(), "phase=run") && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d", code)
	}
	lines := out.String()
	if strings.Contains(lines, "s3cr3t") {
		t.Errorf("the secret is in the log:\n%s", lines)
	}
	config := lineWith(lines, "phase=config")
	for _, want := range []string{
		`data-dir="` + dataDir + ` (from WARREN_DATA_DIR)"`,
		`etcd-prefix="warren-staging (flag)"`,
		`api-token="(set) (from WARREN_API_TOKEN)"`,
		" id=svc-127.0.0.1-" + port + " ", // written once the ID is known
	} {
		if !strings.Contains(config, want) {
			t.Errorf("config line %q\nwant %s", config, want)
		}
	}
	if strings.Contains(config, "self-check") {
		t.Errorf("config line %q: names --self-check, set to its default", config)
	}
	register := lineWith(lines, "phase=register")
	for _, want := range []string{"registry=etcd", "registry_at=" + srv.Endpoints()[0], "key=/warren-staging/services/svc/svc-127.0.0.1-" + port} {
		if !strings.Contains(register, want) {
			t.Errorf("register line %q\nwant %s", register, want)
		}
	}
}

// lineWith is the first line of out that contains s, "" if none does.
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
