package meshview

import (
	"testing"
	"time"
)

// docs/mesh-page.md: a page's event stream is pushed at most four times a
// second and at most 1 MiB a second, with a comment line every 15 s. The
// options are tested on their own; these are the defaults a page gets.
func TestHandler_PacingDefaultsAreTheDocumentedOnes(t *testing.T) {
	h := newHandler(nil, nil)
	if h.minInterval != 250*time.Millisecond || h.rate != 1<<20 || h.heartbeat != 15*time.Second {
		t.Errorf("pushes at most every %s, %d bytes/s, heartbeat %s; docs say 250ms, 1 MiB/s, 15s", h.minInterval, h.rate, h.heartbeat)
	}
	if h := newHandler(nil, []HandlerOption{WithMinInterval(time.Second), WithStreamRate(10), WithHeartbeat(time.Minute)}); h.minInterval != time.Second || h.rate != 10 || h.heartbeat != time.Minute {
		t.Errorf("options not applied over the defaults: %s, %d, %s", h.minInterval, h.rate, h.heartbeat)
	}
}
