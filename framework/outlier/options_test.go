package outlier

import (
	"strings"
	"testing"
	"time"
)

func TestNew_RefusesBadOptionValues(t *testing.T) {
	for name, o := range map[string]Option{
		"WithConsecutiveFailures": WithConsecutiveFailures(0),
		"WithConsecutiveTimeouts": WithConsecutiveTimeouts(0),
		"WithCooldown":            WithCooldown(time.Minute, time.Second),
		"WithMaxEjectionPercent":  WithMaxEjectionPercent(101),
		"WithProbeTimeout":        WithProbeTimeout(0),
		"WithClock":               WithClock(nil),
	} {
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: New = %v, want an error naming it", name, err)
		}
	}
}
