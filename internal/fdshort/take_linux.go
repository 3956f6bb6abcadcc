//go:build linux

package fdshort

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// Take lowers the descriptor limit to a few dozen above what is open and
// takes every descriptor it leaves but free, so the next free+1st open,
// socket or accept fails with EMFILE. release puts the limit back before
// it frees the descriptors, so all are there at once; it is idempotent,
// and runs at the end of the test if nobody called it. Call it in the
// child only (InParent).
func Take(t testing.TB, free int) (release func()) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(len(ents)) + 64 // a few dozen files to take, not thousands
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip("cannot lower RLIMIT_NOFILE:", err)
	}
	var hogs []*os.File
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
		for _, f := range hogs {
			f.Close()
		}
	}
	t.Cleanup(release)
	for range 1000 { // bounded: the limit is a few dozen above what is open
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("taking descriptors: %v", err)
			}
			break
		}
		hogs = append(hogs, f)
	}
	if len(hogs) <= free {
		t.Fatalf("took %d descriptors, want more than the %d to leave free", len(hogs), free)
	}
	for _, f := range hogs[len(hogs)-free:] {
		f.Close()
	}
	hogs = hogs[:len(hogs)-free]
	return release
}
