//go:build !linux

package fdshort

import "testing"

// Take skips: there is no RLIMIT_NOFILE to lower here. InParent has
// skipped already where /proc/self/fd is missing; this keeps the tests
// that call Take compiling.
func Take(t testing.TB, free int) (release func()) {
	t.Helper()
	t.Skip("fdshort: no RLIMIT_NOFILE on this system")
	return func() {}
}
