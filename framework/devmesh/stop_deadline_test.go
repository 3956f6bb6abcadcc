package devmesh

import (
	"strings"
	"testing"
	"time"
)

// Stop gave each instance that ignores SIGTERM its own grace+20 s, one
// after the other: n hung instances held the launcher n times as long (4
// instances of 2 services, the default mesh, 84 s). Now they share one
// deadline: after it every one left is killed.
func TestStop_HungInstancesShareOneDeadline(t *testing.T) {
	defer func(d time.Duration) { stopTimeout = d }(stopTimeout)
	stopTimeout = 3 * time.Second
	const n = 6
	m, out := toyMeshUp(t, map[string]string{"alpha": scriptDeaf}, n)
	waitUp(t, m, "alpha", n) // every script has set its trap before the SIGTERM comes
	began := time.Now()
	err := m.Stop()
	took := time.Since(began)
	if err == nil || strings.Count(err.Error(), "did not stop in time; killed") != n {
		t.Fatalf("Stop = %v; want each of the %d hung instances reported killed\n%s", err, n, out)
	}
	for _, in := range m.Instances() {
		if alive(in) {
			t.Errorf("%s runs after Stop", in.ID())
		}
	}
	// One deadline each would be at least n*(grace+timeout) = 18.6 s; one
	// shared is 3.1 s plus the kills. The bound leaves 12 s of slack.
	if limit := 5 * (m.cfg.Grace + stopTimeout); took > limit {
		t.Fatalf("Stop took %s with %d hung instances; want one shared deadline (%s), under %s", took, n, m.cfg.Grace+stopTimeout, limit)
	}
}
