package openfds

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCount_SeesAnEpollSetOpenAndThenClosed(t *testing.T) {
	before, err := Count(Epoll)
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "epoll")
	if n, _ := Count(Epoll); n != before+1 {
		t.Fatalf("with one more epoll set open: %d, want %d", n, before+1)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := Count(Epoll); n != before {
		t.Fatalf("after closing it: %d, want %d", n, before)
	}
}
