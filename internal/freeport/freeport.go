// Package freeport picks loopback ports for servers that bind after the
// pick: a process a test starts (Consul, ZooKeeper, kube-apiserver), or an
// embedded server given its addresses. A port from net.Listen(":0") comes
// from the kernel's ephemeral range, the range outgoing connections take
// their local ports from; on a loaded machine running many tests, one of
// thousands of such connections can take it between the pick and the
// bind ("bind: address already in use": seen in a fresh-clone make test).
// Ports picked here are free when picked and lie below that range, so only
// another process that binds a fixed port can take them meanwhile.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// low is the lowest port picked: above the well-known and most fixed
// registered ports services use.
const low = 15000

// ephemeralFile holds Linux's ephemeral range, "first last".
const ephemeralFile = "/proc/sys/net/ipv4/ip_local_port_range"

// Pick returns n distinct ports on 127.0.0.1 that are free for TCP and,
// with udp, for UDP too (serf and DNS listen on both). All are held open
// until the last is picked, so no port is returned twice.
// A port a Keeper claims (another server's, between its runs) is not
// picked.
func Pick(n int, udp bool) ([]int, error) {
	high := ephemeralStart() - 1
	candidate := func() (int, error) { return low + rand.IntN(high-low+1), nil }
	if high-low < 1000 {
		candidate = kernelPort // an unusual ephemeral range: no room below it
	}
	return pick(n, udp, candidate)
}

func pick(n int, udp bool, candidate func() (int, error)) ([]int, error) {
	var hold []interface{ Close() error }
	defer func() {
		for _, c := range hold {
			c.Close()
		}
	}()
	got := make([]int, 0, n)
	for tries := 0; len(got) < n; tries++ {
		if tries == 50*n {
			return nil, fmt.Errorf("freeport: %d free ports not found in %d tries", n, tries)
		}
		port, err := candidate()
		if err != nil {
			return nil, err
		}
		if claimed(port) {
			continue // another server's, while it restarts
		}
		c, ok := listen(port, udp)
		if !ok {
			continue // taken (or held by this pick)
		}
		hold = append(hold, c...)
		got = append(got, port)
	}
	return got, nil
}

// Addrs is Pick for TCP as "127.0.0.1:port" addresses.
func Addrs(n int) ([]string, error) {
	ports, err := Pick(n, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = Addr(p)
	}
	return out, nil
}

// listen binds port (TCP, and UDP with udp) and returns what to close.
func listen(port int, udp bool) ([]interface{ Close() error }, bool) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, false
	}
	if !udp {
		return []interface{ Close() error }{l}, true
	}
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		l.Close()
		return nil, false
	}
	return []interface{ Close() error }{l, u}, true
}

// ephemeralStart is the first port of the kernel's ephemeral range; where
// it cannot be read, Linux's default (other systems start higher).
func ephemeralStart() int {
	b, err := os.ReadFile(ephemeralFile)
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// kernelPort asks the kernel for a free port (net.Listen on port 0).
func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
