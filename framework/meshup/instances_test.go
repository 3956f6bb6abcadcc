package meshup

import (
	"strings"
	"testing"
)

// TestCheckInstances: -instances outside 1..maxInstances is refused
// before anything is built or started, naming the flag and the range.
func TestCheckInstances(t *testing.T) {
	for _, n := range []int{1, 2, maxInstances} {
		if err := checkInstances(n); err != nil {
			t.Errorf("checkInstances(%d) = %v, want nil", n, err)
		}
	}
	for _, n := range []int{0, -1, maxInstances + 1, 100000} {
		err := checkInstances(n)
		if err == nil || !strings.Contains(err.Error(), "-instances") || !strings.Contains(err.Error(), "want 1 to 64") {
			t.Errorf("checkInstances(%d) = %v, want a refusal naming -instances and the range", n, err)
		}
	}
}
