package freeport

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
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

// A held port cannot be bound by anyone else, even over connections of
// the last run in TIME_WAIT, and refuses connections (on Linux); released,
// it can be bound again. Release is idempotent.
func TestHold_KeepsPortsUntilReleased(t *testing.T) {
	addrs, err := Addrs(2)
	if err != nil {
		t.Fatal(err)
	}
	timeWait(t, addrs[0])
	h, err := Hold(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range addrs {
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			h.Release()
			t.Fatalf("%s bound by someone else while held", addr)
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if runtime.GOOS == "linux" {
			// Refused, as a stopped server's port is: an accepted and
			// reset connection slows gRPC's reconnects several times.
			if !errors.Is(err, syscall.ECONNREFUSED) {
				h.Release()
				t.Fatalf("%s: dial = %v, want connection refused", addr, err)
			}
		} else if err == nil {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(make([]byte, 1))
			c.Close()
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				h.Release()
				t.Fatalf("%s: read %d bytes, %v; want the connection reset", addr, n, err)
			}
		}
	}
	h.Release()
	h.Release()
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s still held after Release: %v", addr, err)
		}
		ln.Close()
	}
	if _, err := Hold(addrs[0], "127.0.0.1:bad"); err == nil {
		t.Fatal("Hold of a bad address succeeded")
	}
	if ln, err := net.Listen("tcp", addrs[0]); err != nil {
		t.Fatalf("a failed Hold kept %s: %v", addrs[0], err)
	} else {
		ln.Close()
	}
	var none *Held
	none.Release()
}

// A Keeper holds ports from Hold to Release, and nothing after Close.
func TestKeeper_HoldReleaseClose(t *testing.T) {
	addrs, err := Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	bindable := func() bool {
		ln, err := net.Listen("tcp", addrs[0])
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	var k Keeper
	k.Release()   // nothing held: fine
	for range 2 { // a second Hold replaces the first
		if err := k.Hold(addrs...); err != nil {
			t.Fatal(err)
		}
		if bindable() {
			t.Fatal("held port could be bound")
		}
	}
	k.Release()
	if !bindable() {
		t.Fatal("released port still held")
	}
	if err := k.Hold(addrs...); err != nil {
		t.Fatal(err)
	}
	k.Close()
	k.Close()
	if !bindable() {
		t.Fatal("port still held after Close")
	}
	if err := k.Hold(addrs...); err != nil || !bindable() {
		t.Fatalf("Hold after Close held the port (err %v)", err)
	}
}

// timeWait leaves a connection in TIME_WAIT on addr's port, as a server
// that closed its connections first leaves behind.
func timeWait(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := ln.Accept(); err == nil {
			c.Close() // the server's side closes first: TIME_WAIT is here
		}
	}()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	c.Read(make([]byte, 1)) // EOF once the server has closed
	c.Close()
	<-done
}

// A Keeper's ports stay claimed from Hold, through Release (the server's
// start), until Close, and Pick passes over a claimed port: no other
// picker, in this process or another, takes it while the server starts.
func TestKeeper_ClaimKeepsPickOffUntilClose(t *testing.T) {
	addrs, err := Addrs(2)
	if err != nil {
		t.Fatal(err)
	}
	mine, _ := portOf(addrs[0])
	other, _ := portOf(addrs[1])
	// Offers the claimed port first, then a free one.
	offers := func() func() (int, error) {
		i := 0
		return func() (int, error) {
			i++
			if i == 1 {
				return mine, nil
			}
			return other, nil
		}
	}
	var k Keeper
	if err := k.Hold(addrs[0]); err != nil {
		t.Fatal(err)
	}
	k.Release() // the server binds now; the claim stays
	if !claimed(mine) {
		t.Fatal("a released port is no longer claimed")
	}
	got, err := pick(1, false, offers())
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != other {
		t.Fatalf("picked %d, the port a Keeper claims", got[0])
	}
	k.Close()
	if claimed(mine) {
		t.Fatal("port still claimed after Close")
	}
	if got, err := pick(1, false, offers()); err != nil || got[0] != mine {
		t.Fatalf("after Close, picked %v (err %v), want %d", got, err, mine)
	}
}

// Claim claims without holding: the port stays bindable (the server's to
// bind, or to leave as a dead server leaves it), Pick passes over it.
func TestKeeper_ClaimWithoutHold(t *testing.T) {
	addrs, err := Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := portOf(addrs[0])
	var k Keeper
	k.Claim(addrs...)
	if !claimed(port) {
		t.Fatal("Claim did not claim")
	}
	ln, err := net.Listen("tcp", addrs[0])
	if err != nil {
		t.Fatalf("a claimed port could not be bound: %v", err)
	}
	ln.Close()
	k.Close()
	if claimed(port) {
		t.Fatal("claimed after Close")
	}
	k.Claim(addrs...)
	if claimed(port) {
		t.Fatal("Claim after Close claimed")
	}
}
