package client

import (
	"fmt"
	"testing"
)

// An answer over WithMaxResponseBytes is the caller's limit, not the
// instance failing (docs/client.md, "Outlier ejection"): it must not count
// towards ejecting an instance that answers every call.
func TestGuard_TooLargeAnswerIsNotAnInstanceFailure(t *testing.T) {
	err := fmt.Errorf("GET /big: %w (limit %d)", ErrResponseTooLarge, 1024)
	if instanceFailure(err) {
		t.Fatalf("instanceFailure(%v) = true: an answer over the caller's size limit would eject a healthy instance", err)
	}
}
