package main

import (
	"bytes"
	"strings"
	"testing"
)

// usergrpc takes the client half of the services' TLS flags, so it can
// reach a TLS mesh with a private CA and mutual TLS.
func TestRun_TakesTheServicesTLSClientFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	for _, f := range []string{"-tls-ca", "-tls-cert", "-tls-key"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("-h lists no %s:\n%s", f, errOut.String())
		}
	}
	errOut.Reset()
	if code := run([]string{"--tls-cert", "c.pem", "list"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--tls-cert and --tls-key go together") {
		t.Fatalf("a certificate without its key: exit %d, %q; want 2 and the reason", code, errOut.String())
	}
}
