package app

import (
	"context"
	"regexp"
	"testing"
	"time"
)

// docs/oncall.md (Registry unreachable): while a registration is retrying,
// /readyz answers 503 with the registered check failing
// "retrying since <RFC 3339 time>: <the last error>". The check builds that
// detail from the registrar's Status (checkRegistered); a detail that lost
// "since …" (the state and error only) passed every other test.
func TestRun_ReadyzShowsRetryingSinceWhileTheRegistrationRetries(t *testing.T) {
	srv, reg := etcdRegistry(t, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j := &journal{}
	a, err := New("orders", okHandler(), reg, testOptions(j, WithWithdrawTimeout(time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := start(t, a, runCtx)
	defer func() { stop(); wait(t, done) }()
	if b := readyz(t, a); !b.Checks["registered"].OK {
		t.Fatalf("registered check fails before etcd stopped: %+v", b)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^retrying since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d): \S`)
	var last readyBody
	deadline := time.Now().Add(30 * time.Second) // a 2 s TTL: retrying well within
	for n := 0; n < 300; n++ {
		last = readyz(t, a)
		c := last.Checks["registered"]
		if !c.OK && want.MatchString(c.Detail) {
			if last.Status == "ok" {
				t.Fatalf("/readyz status %q with the registration retrying", last.Status)
			}
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("registered check never read %q while etcd was down: last %+v", want, last)
}
