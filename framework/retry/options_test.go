package retry

import (
	"strings"
	"testing"
	"time"
)

// A bad option value is refused by New with an error naming the option
// (round 1 ignored it silently and kept the default).
func TestNew_RefusesBadOptionValues(t *testing.T) {
	for name, o := range map[string]Option{
		"WithMaxAttempts":       WithMaxAttempts(0),
		"WithPerAttemptTimeout": WithPerAttemptTimeout(-time.Second),
		"WithBackoff":           WithBackoff(time.Second, time.Millisecond),
		"WithClassifier":        WithClassifier(nil),
		"WithHedging":           WithHedging(0),
	} {
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: New = %v, want an error naming it", name, err)
		}
	}
	if _, err := New(WithMaxAttempts(1), WithBackoff(time.Millisecond, time.Millisecond)); err != nil {
		t.Fatal(err)
	}
}
