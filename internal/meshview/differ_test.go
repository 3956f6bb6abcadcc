package meshview

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// A bad deploy answers 404 where its siblings answer 200 (report j57b
// F1): the instance with 35 % 404s beside two with none is flagged, while
// three instances with the same 35 % (a service whose callers ask for
// missing records) are not.
func TestView_FlagsAnInstanceWhose4xxShareStandsApartFromItsSiblings(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	insts := map[string][]*fakeInstance{}
	for _, svc := range []string{"user", "billing"} {
		for n := 1; n <= 3; n++ {
			f := startInstance(t, svc, fmt.Sprintf("%s-%d", svc, n), "zone-a")
			if err := reg.Register(ctx, f.inst); err != nil {
				t.Fatal(err)
			}
			insts[svc] = append(insts[svc], f)
		}
	}
	// A window longer than the test: every request stays in it, however
	// slowly the probes run.
	v := runView(t, srv.Registry(), WithWindow(time.Hour))
	all := func(s Snapshot, ok func(*Instance) bool) bool {
		for svc, fs := range insts {
			for _, f := range fs {
				in := find(s, svc, f.inst.ID)
				if in == nil || in.Traffic == nil || !ok(in) {
					return false
				}
			}
		}
		return true
	}
	// Rates count what was served between two scrapes: wait for the first.
	eventually(t, v, "every instance scraped twice", func(s Snapshot) bool { return all(s, func(*Instance) bool { return true }) })

	const n = 100
	send := func(f *fakeInstance, missing int) {
		for i := range n {
			if i < missing {
				f.get(t, "/no/such/route") // 404
			} else {
				f.get(t, "/work/ok")
			}
		}
	}
	send(insts["user"][0], 35)
	send(insts["user"][1], 0)
	send(insts["user"][2], 0)
	for _, f := range insts["billing"] {
		send(f, 35)
	}
	s := eventually(t, v, "every request counted", func(s Snapshot) bool {
		return all(s, func(in *Instance) bool { return in.Traffic.requests >= n })
	})
	for svc, fs := range insts {
		for k, f := range fs {
			in := find(s, svc, f.inst.ID)
			bad := svc == "user" && k == 0
			if (in.Differs != "") != bad {
				t.Errorf("%s: 4xx %v, differs %q; want flagged: %v", f.inst.ID, in.Traffic.ClientErrorRatio, in.Differs, bad)
			}
			want := 0.0
			if svc == "billing" || bad {
				want = 0.35
			}
			if in.Traffic.ClientErrorRatio != want || in.Traffic.ErrorRatio != 0 {
				t.Errorf("%s: 4xx share %v, 5xx %v; want %v and 0", f.inst.ID, in.Traffic.ClientErrorRatio, in.Traffic.ErrorRatio, want)
			}
		}
	}
}
