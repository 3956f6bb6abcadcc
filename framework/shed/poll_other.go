//go:build !linux

package shed

import "net"

// poller is Linux-only (epoll); elsewhere the waiting signal counts
// nothing and never refuses.
type poller struct{}

func newPoller() (*poller, error) { return &poller{}, nil }

func (*poller) add(net.Conn)    {}
func (*poller) remove(net.Conn) {}
func (*poller) count(int) int   { return 0 }
func (*poller) close() error    { return nil }
