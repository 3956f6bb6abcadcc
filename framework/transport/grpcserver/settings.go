package grpcserver

import (
	"fmt"

	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/tlsconf"
)

// Settings are a main's flags for its gRPC server: pass a pointer to
// bootstrap.WithSettings to get --grpc-listen (WARREN_GRPC_LISTEN, the
// --config key grpc-listen). svcgen's generated mains do.
type Settings struct {
	Listen string `setting:"grpc-listen" help:"gRPC listen address (host:port; port 0 picks a free one)"`
}

// DefaultSettings listens on DefaultAddr.
func DefaultSettings() Settings { return Settings{Listen: DefaultAddr} }

// Options are the server options of the settings and the process's
// configuration: the listen address, the HTTP server's TLS (--tls-cert,
// --tls-key, --tls-client-ca: the same certificate and, with a client CA,
// mutual TLS) and its load shedder (nil: the server's own).
func (s Settings) Options(c config.Config, shedder *shed.Limiter) ([]Option, error) {
	opts := []Option{WithAddr(s.Listen)}
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
	return opts, nil
}
