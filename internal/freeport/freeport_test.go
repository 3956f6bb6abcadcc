package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Picked ports are distinct, lie below the ephemeral range (where outgoing
// connections cannot take them) and are free for TCP and UDP.
func TestPick_DistinctFreePortsBelowTheEphemeralRange(t *testing.T) {
	ports, err := Pick(60, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 60 {
		t.Fatalf("%d ports, want 60", len(ports))
	}
	start := ephemeralStart()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d picked twice", p)
		}
		seen[p] = true
		if start-1-low >= 1000 && (p < low || p >= start) {
			t.Fatalf("port %d outside %d..%d (the ephemeral range starts at %d)", p, low, start-1, start)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("picked port %d not free for TCP: %v", p, err)
		}
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("picked port %d not free for UDP: %v", p, err)
		}
		u.Close()
	}
}

// A port held by someone else is never picked.
func TestPick_SkipsTakenPorts(t *testing.T) {
	var held []net.Listener
	taken := map[int]bool{}
	for range 200 {
		ports, err := Pick(1, false)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
		if err != nil {
			t.Fatalf("picked port %d not free: %v", ports[0], err)
		}
		held = append(held, l)
		if taken[ports[0]] {
			t.Fatalf("port %d picked while held", ports[0])
		}
		taken[ports[0]] = true
	}
	for _, l := range held {
		l.Close()
	}
}

func TestAddrs(t *testing.T) {
	addrs, err := Addrs(3)
	if err != nil || len(addrs) != 3 {
		t.Fatalf("Addrs(3) = %v, %v", addrs, err)
	}
	for _, a := range addrs {
		if host, _, err := net.SplitHostPort(a); err != nil || host != "127.0.0.1" {
			t.Fatalf("address %q: %v", a, err)
		}
	}
}
