package meshview

import "testing"

// docs/mesh-page.md, "differs": an instance is flagged when its 4xx share
// stands more than 10 percentage points above the median share of its
// siblings, each with at least 20 answers in the window.
// TestView_FlagsAnInstanceWhose4xxShareStandsApartFromItsSiblings uses 35
// points and 100 answers, far from either bound: a margin of 20 points or
// a minimum of 5 answers passed it. These sit at the bounds.
func TestFlagDiffering_TheDocumentedBounds(t *testing.T) {
	inst := func(id string, requests, share float64) Instance {
		return Instance{ID: id, Traffic: &Traffic{requests: requests, ClientErrorRatio: share}}
	}
	for _, c := range []struct {
		name  string
		insts []Instance
		want  string // the ID flagged, "" for none
	}{
		{"11 points above, 20 answers each", []Instance{inst("a", 20, 0.11), inst("b", 20, 0), inst("c", 20, 0)}, "a"},
		{"9 points above", []Instance{inst("a", 20, 0.09), inst("b", 20, 0), inst("c", 20, 0)}, ""},
		{"the median, not the mean, of the siblings", []Instance{inst("a", 20, 0.15), inst("b", 20, 0.10), inst("c", 20, 0.10), inst("d", 20, 0.90)}, "d"},
		{"19 answers are not judged", []Instance{inst("a", 19, 0.90), inst("b", 20, 0), inst("c", 20, 0)}, ""},
		{"siblings with 19 answers do not count", []Instance{inst("a", 20, 0.90), inst("b", 19, 0), inst("c", 19, 0)}, ""},
	} {
		flagDiffering(c.insts)
		for _, in := range c.insts {
			if got := in.Differs != ""; got != (in.ID == c.want) {
				t.Errorf("%s: %s (share %v of %v answers) flagged %v, want %v", c.name, in.ID, in.Traffic.ClientErrorRatio, in.Traffic.requests, got, in.ID == c.want)
			}
		}
	}
}
