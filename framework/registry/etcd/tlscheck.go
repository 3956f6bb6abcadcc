package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/warren-mesh/warren/internal/redact"
)

// checkSchemeWithTLS refuses an http:// endpoint when TLS is configured:
// clientv3 drops TLS for that scheme and would send every request, the
// password included, in clear. A bare host:port means TLS when TLS is
// configured; unix:// too (clientv3 treats its credentials as optional).
func checkSchemeWithTLS(ep string) error {
	if strings.HasPrefix(ep, "http://") {
		return fmt.Errorf("%q is plaintext (http://)", redact.URL(ep))
	}
	return nil
}

// checkTLSFiles reads the CA bundle and the client key pair as the client
// will, naming the file (as caName, certName, keyName: flags or options)
// that does not hold what it should. Empty names are not checked.
func checkTLSFiles(ca, cert, key, caName, certName, keyName string) error {
	if ca != "" {
		if err := checkCAFile(ca); err != nil {
			return fmt.Errorf("%s %q: %w", caName, ca, err)
		}
	}
	if cert != "" && key != "" {
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			return fmt.Errorf("%s %q and %s %q: %w", certName, cert, keyName, key, err)
		}
	}
	return nil
}

// checkCAFile checks that file holds PEM certificates and nothing else
// etcd's loader would choke on.
func checkCAFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read the CA file: %w", err)
	}
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a %s block, not a CA certificate (a key given for the CA?)", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("not a valid CA certificate: %w", err)
		}
		n++
	}
	if n == 0 {
		return errors.New("holds no PEM certificate")
	}
	return nil
}
