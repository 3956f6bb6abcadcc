package client

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// An instance whose record changes in place — the same ID and address,
// a new version or weight — becomes a new target while a call is still
// out on the old one. The old one's release, once that call returns,
// must not tell the observer that the instance left: it is still in the
// set, and package metrics deletes its series (picks, ejections, the
// breaker state gauge) on that word, so a live instance — ejected, say —
// vanished from the dashboards until its next change.
func TestClient_RecordChangedInPlaceIsNotReleasedWhileListed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	slowIn := make(chan struct{}, 1)
	release := make(chan struct{})
	b := serveWith(t, "", nil, func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/slow") {
				slowIn <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			b.serve(w, r)
		})
	})
	b.inst.Version = "1"
	reg := newRegistry(t, b.inst)
	obs := &releaseLog{}
	c := newClient(t, reg, WithObserver(obs))
	id := b.inst.ID

	slowDone := make(chan error, 1)
	go func() {
		_, err := Call[echoReq, echoResp](ctx, c, "GET", "/slow", echoReq{}, NoRetry())
		slowDone <- err
	}()
	select {
	case <-slowIn:
	case <-ctx.Done():
		t.Fatal("the slow call never reached the instance")
	}
	// The record changes in place: a new version at the same ID and address.
	v2 := b.inst
	v2.Version = "2"
	if err := reg.Register(ctx, v2); err != nil {
		t.Fatal(err)
	}
	for {
		ts := c.Targets()
		if len(ts) == 1 && ts[0].Instance().Version == "2" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the client never saw the new record")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/echo", echoReq{}); err != nil {
		t.Fatalf("call on the new record: %v", err)
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatalf("slow call on the old record: %v", err)
	}
	// The old target's closer runs as its call returns; give it time.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !strings.HasPrefix(last(obs.list()), "released") {
		time.Sleep(10 * time.Millisecond)
	}
	ev := obs.list()
	t.Logf("events: %q", ev)
	if last(ev) == "released "+id {
		t.Errorf("instance %s reported released while it is still listed (events %q)", id, ev)
	}
	// When it leaves for good, it is released once.
	if err := reg.Deregister(ctx, v2); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && last(obs.list()) != "released "+id {
		time.Sleep(10 * time.Millisecond)
	}
	if ev := obs.list(); last(ev) != "released "+id {
		t.Errorf("after it left discovery: events %q, want its release last", ev)
	}
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// The same with no call out on the old record: the registries' delta
// path used to close the old target before building the new one, so the
// instance was reported released (its series deleted and started over)
// on every version or weight change.
func TestClient_RecordChangedInPlaceIsNotReleasedWithNothingInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := startBackend(t, "", nil)
	b.inst.Version = "1"
	reg := newRegistry(t, b.inst)
	obs := &releaseLog{}
	c := newClient(t, reg, WithObserver(obs))
	id := b.inst.ID
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/echo", echoReq{}); err != nil {
		t.Fatal(err)
	}
	v2 := b.inst
	v2.Version = "2"
	if err := reg.Register(ctx, v2); err != nil {
		t.Fatal(err)
	}
	for {
		ts := c.Targets()
		if len(ts) == 1 && ts[0].Instance().Version == "2" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the client never saw the new record")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/echo", echoReq{}); err != nil {
		t.Fatalf("call on the new record: %v", err)
	}
	if ev := obs.list(); slices.Contains(ev, "released "+id) {
		t.Errorf("instance %s reported released by a change of its record (events %q)", id, ev)
	}
}
