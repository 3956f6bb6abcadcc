package client

import (
	"net/http"
	"testing"
	"time"
)

// docs/overload.md, "Leave the shedding instance alone": an overloaded
// instance is held out of picks for "half to all of its Retry-After
// (jittered, capped at 5 s)", so callers refused together do not come
// back together. TestError_OverloadHoldDefaultAndCap checks the bounds;
// a hold of always the whole Retry-After passed it. Here the holds must
// spread over the range: of 200 draws from [½, 1] × Retry-After, some
// fall in each half of it (all in one half: 2⁻²⁰⁰).
func TestGuard_OverloadHoldIsJitteredOverHalfToAllOfRetryAfter(t *testing.T) {
	body := []byte(`{"error":"server overloaded, try another instance","code":"overloaded"}`)
	for _, ra := range []struct {
		header string
		d      time.Duration
	}{{"", time.Second}, {"2", 2 * time.Second}, {"30", 5 * time.Second}} {
		h := http.Header{}
		if ra.header != "" {
			h.Set("Retry-After", ra.header)
		}
		e := decodeError(http.StatusServiceUnavailable, h, body, "h:1", "")
		low, high := 0, 0
		for range 200 {
			d := e.OverloadHold()
			if d < ra.d/2 || d > ra.d {
				t.Fatalf("Retry-After %q: hold %v, want within [%v, %v]", ra.header, d, ra.d/2, ra.d)
			}
			if d < ra.d*3/4 {
				low++
			} else {
				high++
			}
		}
		if low == 0 || high == 0 {
			t.Fatalf("Retry-After %q: of 200 holds %d in the lower half of [%v, %v] and %d in the upper; want them spread",
				ra.header, low, ra.d/2, ra.d, high)
		}
	}
}
