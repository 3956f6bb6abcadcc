package grpcserver

import (
	"fmt"
	"net"

	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/tlsconf"
)

// DefaultPort is the gRPC port of Settings left at their default.
const DefaultPort = "9090"

// Settings are a main's flags for its gRPC server: pass a pointer to
// bootstrap.WithSettings to get --grpc-listen (WARREN_GRPC_LISTEN, the
// --config key grpc-listen). svcgen's generated mains do.
type Settings struct {
	// Listen is the listen address; empty (the default) is --listen's
	// host on DefaultPort, so a service kept to loopback or an internal
	// address by --listen does not serve gRPC on every interface, and
	// both transports are advertised on the same host.
	Listen string `setting:"grpc-listen" help:"gRPC listen address host:port (port 0 picks a free one; default: --listen's host, port 9090)"`
	// Reflection serves gRPC server reflection (WithReflection).
	Reflection bool `setting:"grpc-reflection" help:"serve gRPC server reflection, so grpcurl and similar tools can list and call methods without the .proto files (it shows every method and message to anyone who can connect)"`
}

// Validate checks --grpc-listen when set: host:port, as --listen.
func (s Settings) Validate() error {
	if s.Listen == "" {
		return nil
	}
	return config.CheckListen("grpc-listen", s.Listen)
}

// DefaultSettings listen on --listen's host, port DefaultPort.
func DefaultSettings() Settings { return Settings{} }

// Addr is the address the settings listen on for a process whose HTTP
// server listens on httpListen: Listen when set, else httpListen's host
// (none: every interface) on DefaultPort.
func (s Settings) Addr(httpListen string) string {
	if s.Listen != "" {
		return s.Listen
	}
	host, _, err := net.SplitHostPort(httpListen)
	if err != nil {
		host = "" // a --listen config.Validate let through is host:port; no host to follow otherwise
	}
	return net.JoinHostPort(host, DefaultPort)
}

// Options are the server options of the settings and the process's
// configuration: the listen address (Addr of --listen), the HTTP server's
// TLS (--tls-cert, --tls-key, --tls-client-ca: the same certificate and,
// with a client CA, mutual TLS) and its load shedder (nil: the server's
// own).
func (s Settings) Options(c config.Config, shedder *shed.Limiter) ([]Option, error) {
	opts := []Option{WithAddr(s.Addr(c.Listen))}
	if s.Listen == "" {
		opts = append(opts, func(o *options) error { o.addrDefaulted = true; return nil })
	}
	if c.TLSCert != "" {
		cfg, err := tlsconf.Server(c.TLSCert, c.TLSKey, c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("grpc: %w", err)
		}
		opts = append(opts, WithTLS(cfg))
	}
	if shedder != nil {
		opts = append(opts, WithShedding(shedder))
	}
	if s.Reflection {
		opts = append(opts, WithReflection())
	}
	return opts, nil
}
