package dirlock

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// A second Lock of a held directory fails with ErrHeld naming the
// holder's pid; after release (idempotent) it is taken again.
func TestLock_HeldThenReleased(t *testing.T) {
	dir := t.TempDir()
	release, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Lock = %v; want ErrHeld naming pid %d", err, os.Getpid())
	}
	release()
	release()
	again, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	again()
}
