package config

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"

	"github.com/warren-mesh/warren/framework/tlsconf"
)

// TLSClient is the calling side of service-to-service TLS: the CA that
// verifies the services' certificates and, for a mesh with mutual TLS,
// the certificate presented to them. A service gets it from its own
// flags (Config.TLSClient); a program that only calls services (usergrpc,
// `warren page`) binds the same flags with BindTLSClient.
type TLSClient struct {
	CA   string // verify services against this CA file; "": the system roots
	Cert string // present this certificate file (PEM)…
	Key  string // …and its key to services that require one
}

// BindTLSClient adds --tls-ca, --tls-cert and --tls-key to fs, bound to
// t: the names, WARREN_TLS_* variables and files a service takes (its
// --tls-cert is also its client certificate), so a tool reaches a TLS
// mesh with the settings its services already have.
func BindTLSClient(fs *flag.FlagSet, t *TLSClient) {
	fs.StringVar(&t.CA, "tls-ca", t.CA, "verify services' certificates against this CA file (PEM; default: the system roots): a mesh with a private CA needs it")
	fs.StringVar(&t.Cert, "tls-cert", t.Cert, "present this certificate file (PEM) to services that require client certificates (mutual TLS)")
	fs.StringVar(&t.Key, "tls-key", t.Key, "key file of --tls-cert")
}

// TLSClient is the calling side of c's TLS: --tls-ca (default
// --tls-client-ca: the mesh's CA, when it signs the callers too), and
// --tls-cert and --tls-key as the client certificate.
func (c Config) TLSClient() TLSClient {
	ca := c.TLSCA
	if ca == "" {
		ca = c.TLSClientCA
	}
	return TLSClient{CA: ca, Cert: c.TLSCert, Key: c.TLSKey}
}

// Validate reports a certificate without its key or a key without its
// certificate.
func (t TLSClient) Validate() error {
	if (t.Cert == "") != (t.Key == "") {
		return errors.New("config: --tls-cert and --tls-key go together")
	}
	return nil
}

// Config reads the files into a client TLS configuration
// (tlsconf.Client). It is nil when neither a CA nor a certificate is set:
// the caller keeps its defaults (the system roots for https and grpcs
// endpoints).
func (t TLSClient) Config() (*tls.Config, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if t.CA == "" && t.Cert == "" {
		return nil, nil
	}
	cfg, err := tlsconf.Client(t.CA, t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("config: TLS of calls to other services (--tls-ca, else --tls-client-ca; --tls-cert, --tls-key as the client certificate): %w", err)
	}
	return cfg, nil
}
