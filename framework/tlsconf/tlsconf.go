// Package tlsconf builds the TLS configurations of Warren's service-to-
// service HTTPS from PEM files: a server side that can require client
// certificates (mutual TLS) and a client side that verifies servers
// against a CA and presents its own certificate.
//
// Files are read once; rotating a certificate means restarting the
// process (one instance at a time: the lifecycle drains each).
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Server returns the configuration of a server with the certificate and
// key in certFile and keyFile. When clientCAFile is not empty every client
// must present a certificate signed by a CA in it (mutual TLS); a client
// without one is refused in the handshake.
func Server(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tlsconf: a server needs both a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: load %s and its key: %w", certFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pool, err := loadPool(clientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client returns the configuration of a client that verifies servers
// against the CAs in caFile (the system's roots when empty) and, when
// certFile and keyFile are set, presents that certificate to servers that
// ask for one.
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: load %s and its key: %w", certFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("tlsconf: a client certificate needs both a certificate and a key file")
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tlsconf: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// SelfCheck returns the client configuration of a server's self-check
// against its own TLS endpoint (server is the server's configuration):
// it presents the server's own certificate to a server that asks for one
// (mTLS), whatever CA names it accepts, and does not verify the answer's
// certificate, since the self-check proves who answered with its nonce,
// not with the certificate. Every transport's self-check uses it unless
// told otherwise.
func SelfCheck(server *tls.Config) *tls.Config {
	return &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			switch {
			case len(server.Certificates) > 0:
				return &server.Certificates[0], nil
			case server.GetCertificate != nil:
				return server.GetCertificate(&tls.ClientHelloInfo{})
			}
			return &tls.Certificate{}, nil
		},
		InsecureSkipVerify: true, //nolint:gosec // identity is checked by the nonce
		MinVersion:         tls.VersionTLS12,
	}
}
