package meshview

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// A record the registry dropped while its process answered and had not
// let go of it is "lease lost", not withdraw (report j57b F6: after an
// etcd hang, instances whose lease lapsed and that re-registered showed
// as withdrawn). The /readyz bodies are framework/health's, with the
// checks framework/app reports.
func TestView_ARecordTheRegistryDroppedIsLeaseLostNotWithdraw(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	retrying := "retrying since 2026-12-06T18:06:06Z: etcd: grant lease for user-1: context deadline exceeded"
	watchdog := "withdrawn by the watchdog"
	cases := []struct {
		id           string
		unregistered *string
		draining     bool
		kind, detail string
	}{
		{"user-1", &retrying, false, KindLeaseLost, "registered: retrying since"},
		{"user-2", nil, false, KindLeaseLost, "still counted itself registered"}, // the registrar has not noticed yet
		{"user-3", nil, true, KindWithdraw, "draining"},
		{"user-4", &watchdog, false, KindWithdraw, "watchdog"},
	}
	fs := map[string]*fakeInstance{}
	for _, c := range cases {
		f := startInstance(t, "user", c.id, "zone-a")
		if err := reg.Register(ctx, f.inst); err != nil {
			t.Fatal(err)
		}
		fs[c.id] = f
	}
	v := runView(t, srv.Registry())
	eventually(t, v, "every instance ready", func(s Snapshot) bool {
		for _, c := range cases {
			if i := find(s, "user", c.id); i == nil || i.Readiness == nil || !i.Readiness.Ready {
				return false
			}
		}
		return true
	})
	for _, c := range cases {
		f := fs[c.id]
		f.unregistered.Store(c.unregistered)
		f.draining.Store(c.draining)
		if err := reg.Deregister(ctx, f.inst); err != nil {
			t.Fatal(err)
		}
	}
	s := eventually(t, v, "every departure settled", func(s Snapshot) bool {
		n := 0
		for _, e := range s.Events {
			if e.Kind == KindWithdraw || e.Kind == KindLeaseLost || e.Kind == KindExpire {
				n++
			}
		}
		return n == len(cases)
	})
	for _, c := range cases {
		found := false
		for _, e := range s.Events {
			if e.Instance == c.id && e.Kind != KindRegister {
				found = true
				if e.Kind != c.kind || !strings.Contains(e.Detail, c.detail) {
					t.Errorf("%s: %s %q, want %s mentioning %q", c.id, e.Kind, e.Detail, c.kind, c.detail)
				}
			}
		}
		if !found {
			t.Errorf("%s: no departure event in %+v", c.id, s.Events)
		}
	}
}
