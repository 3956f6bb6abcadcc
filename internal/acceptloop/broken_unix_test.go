//go:build unix

package acceptloop

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// An accept that says the listener cannot accept at all (EINVAL: a socket
// that is not listening) ends Run with ErrBroken: no wait mends it.
func TestRun_ReturnsErrBrokenForASocketThatDoesNotListen(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip("no socket:", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "unlistened")
	ln, err := net.FileListener(f) // dups fd
	f.Close()
	if err != nil {
		t.Skip("no listener from a bound socket:", err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() { done <- Run(ln, func(c net.Conn) { c.Close() }) }() // ends on the first accept, or when ln closes
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waiting 10 s after accepting on a socket that does not listen")
	}
	if !errors.Is(err, ErrBroken) || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Run = %v, want ErrBroken wrapping EINVAL", err)
	}
}
