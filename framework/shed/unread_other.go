//go:build !linux

package shed

import "net"

// unread is Linux-only (SIOCINQ); elsewhere the waiting signal reads
// nothing and never refuses.
func unread(net.Conn) bool { return false }
