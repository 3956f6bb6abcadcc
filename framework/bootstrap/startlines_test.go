package bootstrap

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
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
