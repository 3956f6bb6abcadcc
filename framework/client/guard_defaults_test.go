package client

import (
	"testing"
	"time"
)

// docs/client.md: DefaultTransport has "a 45 s idle timeout
// (client.DefaultIdleConnTimeout)". keyed_test.go checks only that it is
// under the server's 120 s; a 90 s one passed every test.
func TestGuard_DefaultIdleConnTimeoutIs45Seconds(t *testing.T) {
	if DefaultIdleConnTimeout != 45*time.Second {
		t.Errorf("DefaultIdleConnTimeout = %v, docs/client.md says 45s", DefaultIdleConnTimeout)
	}
	if got := DefaultTransport().IdleConnTimeout; got != DefaultIdleConnTimeout {
		t.Errorf("DefaultTransport().IdleConnTimeout = %v, want DefaultIdleConnTimeout (%v)", got, DefaultIdleConnTimeout)
	}
}
