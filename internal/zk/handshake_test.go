package zk

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// TestConnect_ServerThatNeverAnswersIsLeftAndTriedAgain: a server that
// accepts the connection and takes the connect request but never answers
// (or answers only the length of its reply) is left after recvTimeout —
// two thirds of the session timeout — and dialled again, so a session can
// be resumed before ZooKeeper expires it. Upstream waited 10 × recvTimeout
// (and forever for a reply's body): the second dial came 20 s after the
// first with this 3 s session, after this test's bound.
func TestConnect_ServerThatNeverAnswersIsLeftAndTriedAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply []byte // written after the connect request is read
	}{
		{"silent", nil},
		{"length only", binary.BigEndian.AppendUint32(nil, 36)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := make(chan time.Time, 16)
			addr := fakeServer(t, accepted, func(c net.Conn) {
				if readConnectRequest(c) != nil {
					return
				}
				if tc.reply != nil {
					c.Write(tc.reply)
				}
				drain(c)
			})

			conn, _, err := Connect([]string{addr}, 3*time.Second, WithLogger(quietLogger{}), WithLogInfo(false))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			// recvTimeout (2 s) + the 1 s pause before a server list is tried
			// again is about 3 s; the bound leaves room for a loaded machine
			// and stays under upstream's 20 s.
			const bound = 12 * time.Second
			var first time.Time
			select {
			case first = <-accepted:
			case <-time.After(bound):
				t.Fatalf("the client never dialled within %s", bound)
			}
			select {
			case second := <-accepted:
				t.Logf("dialled again %s after the first dial", second.Sub(first).Round(time.Millisecond))
			case <-time.After(bound):
				t.Fatalf("the client still waited for an answer %s after the first dial; want it to give up after recvTimeout and dial again", bound)
			}
		})
	}
}

// silentServer accepts connections, reads the connect request and never
// answers; each accept is sent on the channel. It stops with the test.
func silentServer(t *testing.T, accepted chan<- time.Time) string {
	t.Helper()
	return fakeServer(t, accepted, drain)
}

// TestConnect_EachOfSeveralServersGetsItsShareOfTheSession: with three
// servers, a handshake that gets no answer is left after the session
// timeout over three (the Java client's rule), not after two thirds of it:
// with a 15 s session the next server is dialled about 5 s after the
// first, where recvTimeout alone waited 10 s.
func TestConnect_EachOfSeveralServersGetsItsShareOfTheSession(t *testing.T) {
	accepted := make(chan time.Time, 16)
	servers := []string{silentServer(t, accepted), silentServer(t, accepted), silentServer(t, accepted)}
	conn, _, err := Connect(servers, 15*time.Second, WithLogger(quietLogger{}), WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const bound = 30 * time.Second
	var first time.Time
	select {
	case first = <-accepted:
	case <-time.After(bound):
		t.Fatalf("the client never dialled within %s", bound)
	}
	select {
	case second := <-accepted:
		// The deadline cannot fire early: a gap under recvTimeout (10 s)
		// is the share at work, whatever the machine's load.
		if gap := second.Sub(first); gap >= 10*time.Second {
			t.Fatalf("the next server was dialled %s after the first; want the session's share per server (5 s), under recvTimeout (10 s)", gap)
		} else {
			t.Logf("dialled the next server %s after the first", gap.Round(time.Millisecond))
		}
	case <-time.After(bound):
		t.Fatalf("no second dial within %s", bound)
	}
}

// A single server gets recvTimeout; several get at most their share,
// floored at a second.
func TestHandshakeTimeout(t *testing.T) {
	for _, tc := range []struct {
		servers int
		session time.Duration
		want    time.Duration
	}{
		{1, 9 * time.Second, 6 * time.Second},
		{3, 9 * time.Second, 3 * time.Second},
		{2, 9 * time.Second, 4500 * time.Millisecond},
		{5, 2 * time.Second, time.Second},
		{2, 1200 * time.Millisecond, 800 * time.Millisecond}, // recvTimeout is below the floor
	} {
		hp := NewDNSHostProvider()
		var srvs []string
		for i := range tc.servers {
			srvs = append(srvs, net.JoinHostPort("127.0.0.1", string(rune('1'+i))+"2181"))
		}
		if err := hp.Init(srvs); err != nil {
			t.Fatal(err)
		}
		c := &Conn{hostProvider: hp}
		c.setTimeouts(int32(tc.session / time.Millisecond))
		if got := c.handshakeTimeout(); got != tc.want {
			t.Errorf("%d servers, session %s: handshake timeout %s, want %s", tc.servers, tc.session, got, tc.want)
		}
	}
}
