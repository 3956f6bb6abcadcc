package grpcserver

import (
	"bytes"
	"flag"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	svcsettings "github.com/warren-mesh/warren/framework/settings"
	"github.com/warren-mesh/warren/framework/transport"
)

// Left at its default, --grpc-listen follows --listen's host on port 9090:
// a service kept to loopback by --listen does not serve gRPC on every
// interface. Set, it is used as given, every interface included.
func TestSettings_DefaultListenFollowsTheHTTPListenHost(t *testing.T) {
	for _, tc := range []struct{ grpcFlag, listen, want string }{
		{"", "127.0.0.1:8080", "127.0.0.1:9090"},
		{"", "127.0.0.1:0", "127.0.0.1:9090"},
		{"", "[::1]:8080", "[::1]:9090"},
		{"", "10.0.0.7:8080", "10.0.0.7:9090"},
		{"", ":8080", ":9090"},
		{":9090", "127.0.0.1:8080", ":9090"},
		{"0.0.0.0:7000", "127.0.0.1:8080", "0.0.0.0:7000"},
	} {
		s := DefaultSettings()
		fs := flag.NewFlagSet("svc", flag.ContinueOnError)
		if err := svcsettings.Bind(fs, &s); err != nil {
			t.Fatal(err)
		}
		var args []string
		if tc.grpcFlag != "" {
			args = []string{"--grpc-listen", tc.grpcFlag}
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		opts, err := s.Options(config.Config{Listen: tc.listen}, nil)
		if err != nil {
			t.Fatal(err)
		}
		o := options{}
		for _, opt := range opts {
			if err := opt(&o); err != nil {
				t.Fatal(err)
			}
		}
		if o.addr != tc.want {
			t.Errorf("--grpc-listen %q, --listen %q: listens on %q, want %q", tc.grpcFlag, tc.listen, o.addr, tc.want)
		}
		if o.addrDefaulted != (tc.grpcFlag == "") {
			t.Errorf("--grpc-listen %q: address marked defaulted %v", tc.grpcFlag, o.addrDefaulted)
		}
	}
}

// Two instances on one host given only --listen both take port 9090; the
// second's error says the address was the default and how to give another.
// An address given with --grpc-listen is reported as it is.
func TestListen_ADefaultAddressInUseSaysItIsTheDefault(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, defaulted := range []bool{true, false} {
		s, err := New(func(*grpc.Server) {}, WithAddr(held.Addr().String()), func(o *options) error { o.addrDefaulted = defaulted; return nil })
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Listen(transport.Host{Service: "svc", Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
		s.Close()
		if err == nil {
			t.Fatal("listened on a port in use")
		}
		if says := strings.Contains(err.Error(), "give each instance its own --grpc-listen"); says != defaulted {
			t.Errorf("defaulted %v: %v", defaulted, err)
		}
	}
}

// A malformed --grpc-listen failed only when the server bound it, exit 1,
// without the flag's name (report j53d finding 10): Parse refuses it.
func TestSettings_MalformedListenIsRefusedNamingTheFlag(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"127.0.0.1:-1", `config: --grpc-listen "127.0.0.1:-1": port "-1" is not a number from 0 to 65535; want host:port`},
		{"abc", `config: --grpc-listen "abc": no port; want host:port`},
		{"127.0.0.1:0", ""},
		{"", ""},
	} {
		s := DefaultSettings()
		_, err := config.ParseWith("svc", "", registry.Backends{memory.Backend()}, []string{"--grpc-listen=" + tc.arg}, &bytes.Buffer{},
			config.ParseOptions{Settings: []any{&s}})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("--grpc-listen %q refused: %v", tc.arg, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("--grpc-listen %q: err = %v\nwant it to start %s", tc.arg, err, tc.want)
		}
	}
}
