package grpcserver

import (
	"flag"
	"testing"

	"github.com/warren-mesh/warren/framework/config"
	svcsettings "github.com/warren-mesh/warren/framework/settings"
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
	}
}
