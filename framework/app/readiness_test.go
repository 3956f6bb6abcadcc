package app

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

func TestRun_ReadyzShowsPerCheckDetail(t *testing.T) {
	j := &journal{}
	var dbDown atomic.Bool
	a, err := New("svc", okHandler(), memory.New(), testOptions(j,
		WithReadinessCheck("db", func(context.Context) error {
			if dbDown.Load() {
				return errors.New("db unreachable")
			}
			return nil
		}),
		WithWatchdog(time.Hour, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	body := readyz(t, a)
	for _, name := range []string{"registered", "draining", "db"} {
		if !body.Checks[name].OK {
			t.Fatalf("check %s not ok: %+v", name, body)
		}
	}
	dbDown.Store(true)
	// The service's own checks are served from a cache of ReadinessCacheAge.
	deadline := time.Now().Add(10 * time.Second)
	for body = readyz(t, a); body.Checks["db"].OK && time.Now().Before(deadline); body = readyz(t, a) {
		time.Sleep(50 * time.Millisecond)
	}
	if body.Status != "fail" || body.Checks["db"].OK || body.Checks["db"].Detail != "db unreachable" {
		t.Fatalf("readyz %+v", body)
	}
}

// A probe that must not follow the registry asks /readyz?exclude=registered
// (an external load balancer, or a kubelet, in front of a service
// registered in etcd, Consul or ZooKeeper): the App's checks go by the
// names the docs give.
func TestRun_ReadyzExcludesTheRegistrationByName(t *testing.T) {
	a, err := New("svc", okHandler(), memory.New(), testOptions(&journal{})...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	base := a.Instance().Endpoints[0]
	for url, want := range map[string]int{
		base + "/readyz?exclude=registered":                  200,
		base + "/readyz?exclude=registered&exclude=draining": 200,
		base + "/readyz?exclude=db":                          400,
	} {
		if st := status(t, http.DefaultClient, url); st != want {
			t.Errorf("%s: %d, want %d", url, st, want)
		}
	}
}

func TestWatchdog_WithdrawsAfterNFailuresAndRestores(t *testing.T) {
	j := &journal{}
	reg := memory.New()
	var down atomic.Bool
	a, err := New("svc", okHandler(), reg, testOptions(j,
		WithReadinessCheck("dep", func(context.Context) error {
			if down.Load() {
				return errors.New("dependency dead")
			}
			return nil
		}),
		WithWatchdog(20*time.Millisecond, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()

	waitFor(t, "registered", func() bool { return len(reg.Instances("svc")) == 1 })
	down.Store(true)
	waitFor(t, "withdrawn", func() bool { return len(reg.Instances("svc")) == 0 })
	if b := readyz(t, a); b.Checks["registered"].OK {
		t.Fatalf("readyz says registered while withdrawn: %+v", b)
	}
	down.Store(false)
	waitFor(t, "restored", func() bool { return len(reg.Instances("svc")) == 1 })
}
