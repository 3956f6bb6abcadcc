package app

import (
	"net"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

func TestLoopbackAdvertised_OnlyALoopbackAddressBesideAWiderListen(t *testing.T) {
	wild, any6, lo, lo6, lan := net.IPv4zero, net.IPv6unspecified, net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 5)
	for _, c := range []struct {
		adv   string
		bound net.IP
		want  bool
	}{
		{"localhost", wild, true},
		{"LOCALHOST.", wild, true},
		{"app.localhost", any6, true},
		{"127.0.0.1", wild, true},
		{"127.1.2.3", lan, true},
		{"::1", any6, true},
		{"[::1]", wild, true},
		{"127.0.0.1", lo, false}, // make up, devmesh: all on loopback
		{"localhost", lo, false},
		{"::1", lo6, false},
		{"", wild, false}, // not set: the default host is no loopback unless nothing else exists
		{"10.0.0.5", wild, false},
		{"user.internal", wild, false},
		{"localhost.example.com", wild, false},
	} {
		if got := loopbackAdvertised(c.adv, &net.TCPAddr{IP: c.bound, Port: 8080}); got != c.want {
			t.Errorf("advertise %q, bound %s: warn %v, want %v", c.adv, c.bound, got, c.want)
		}
	}
}

// everyInterface reports the address a server bound to every interface
// would; the test binds loopback only.
type everyInterface struct{ transport.Server }

func (s everyInterface) Listen(h transport.Host) (net.Addr, error) {
	addr, err := s.Server.Listen(h)
	if err != nil {
		return nil, err
	}
	return &net.TCPAddr{IP: net.IPv4zero, Port: addr.(*net.TCPAddr).Port}, nil
}

// --advertise localhost beside a listen address other hosts reach was
// accepted silently (the self-check passes: loopback reaches the process
// here) and published an instance no other host can call. One warn line
// at start names the flag and the way out; all-loopback stays quiet.
func TestRun_LoopbackAdvertiseBesideAWiderListenWarnsOnce(t *testing.T) {
	for _, c := range []struct {
		name  string
		adv   string
		wide  bool
		warns int
	}{
		{"localhost, echo on every interface", "localhost", true, 1},
		{"all loopback", "127.0.0.1", false, 0},
		{"localhost, all loopback", "localhost", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var echo transport.Server = transporttest.NewLineEcho("127.0.0.1:0")
			if c.wide {
				echo = everyInterface{echo}
			}
			var out syncbuf.Buffer
			startStop(t, "orders", memory.New(), WithServer(echo), WithAdvertise(c.adv), WithLogger(log.NewLogfmtLogger(&out)))
			var warns []string
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "advertised address is loopback") {
					warns = append(warns, l)
				}
			}
			if len(warns) != c.warns {
				t.Fatalf("%d loopback warnings, want %d:\n%s", len(warns), c.warns, out.String())
			}
			if c.warns > 0 && (!strings.HasPrefix(warns[0], "level=warn") || !strings.Contains(warns[0], "--advertise") || !strings.Contains(warns[0], "advertise=localhost")) {
				t.Fatalf("warning %q: want level=warn naming --advertise and its value", warns[0])
			}
		})
	}
}
