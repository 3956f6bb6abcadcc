package shed

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller counts the server's connections whose socket holds bytes nobody
// has read yet: an epoll set of them, level-triggered and asked without
// waiting, so one system call counts them all, exactly. (The Go runtime's
// own poller watches the same sockets in a set of its own; the two do not
// interact.) A socket leaves the set when it is closed: the kernel drops
// it then, before its descriptor can be reused.
type poller struct {
	f    *os.File // the epoll descriptor; closed by close (the finalizer if nobody does)
	fd   int
	bufs sync.Pool // *[]unix.EpollEvent, for counts made concurrently

	// mu is held (read) by every use of fd and (write) by close, so a
	// call never reaches a descriptor number the process reused after it.
	mu     sync.RWMutex
	closed bool
}

func newPoller() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("shed: the waiting signal's epoll set: %w", err)
	}
	return &poller{f: os.NewFile(uintptr(fd), "shed-waiting"), fd: fd}, nil
}

// close releases the epoll set; from then on the poller counts nothing.
// Calling it again does nothing.
func (p *poller) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("shed: close the waiting signal's epoll set: %w", err)
	}
	return nil
}

// add puts c's socket in the set; remove takes it out (for a connection
// handed over, still open). Connections without a socket are left out.
func (p *poller) add(c net.Conn)    { p.ctl(c, unix.EPOLL_CTL_ADD) }
func (p *poller) remove(c net.Conn) { p.ctl(c, unix.EPOLL_CTL_DEL) }

func (p *poller) ctl(c net.Conn, op int) {
	sc, ok := rawConn(c).(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return
	}
	// Control holds the descriptor open while it runs. EEXIST and ENOENT
	// (in already, out already) need nothing done.
	_ = rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		_ = unix.EpollCtl(p.fd, op, int(fd), &ev)
	})
	runtime.KeepAlive(p.f)
}

// count returns how many sockets in the set hold unread bytes (or an end
// of stream not yet read), counting at most max; 0 once closed.
func (p *poller) count(max int) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0
	}
	bp, _ := p.bufs.Get().(*[]unix.EpollEvent)
	if bp == nil || len(*bp) < max {
		b := make([]unix.EpollEvent, max)
		bp = &b
	}
	n, err := unix.EpollWait(p.fd, (*bp)[:max], 0)
	for range 3 { // a signal can interrupt even a wait of 0
		if err != unix.EINTR {
			break
		}
		n, err = unix.EpollWait(p.fd, (*bp)[:max], 0)
	}
	runtime.KeepAlive(p.f)
	p.bufs.Put(bp)
	if err != nil {
		return 0
	}
	return n
}
