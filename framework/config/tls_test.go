package config

import (
	"flag"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// A tool binds the client half of a service's TLS flags: the same names
// and WARREN_TLS_* variables, read into a configuration that trusts the
// CA and presents the certificate; nothing set is no configuration.
func TestBindTLSClient_TheServicesFlagsAndVariables(t *testing.T) {
	ca := tlstest.NewCA(t)
	cli := ca.Issue("tool")
	var tc TLSClient
	fs := flag.NewFlagSet("tool", flag.ContinueOnError)
	BindTLSClient(fs, &tc)
	t.Setenv(EnvName("tls-ca"), ca.CertFile)
	if err := ParseFlags(fs, []string{"--tls-cert", cli.CertFile, "--tls-key", cli.KeyFile}); err != nil {
		t.Fatal(err)
	}
	cfg, err := tc.Config()
	if err != nil || cfg == nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("Config() = %+v, %v; want the CA from WARREN_TLS_CA and the flags' certificate", cfg, err)
	}
	if cfg, err := (TLSClient{}).Config(); cfg != nil || err != nil {
		t.Fatalf("nothing set: %v, %v; want nil (the caller's defaults)", cfg, err)
	}
	if _, err := (TLSClient{CA: ca.CertFile, Cert: cli.CertFile}).Config(); err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-key go together") {
		t.Fatalf("a certificate without its key: %v", err)
	}
}

// A service's client side verifies against --tls-ca, else its
// --tls-client-ca (one mesh CA).
func TestConfig_TLSClientDefaultsToTheClientCA(t *testing.T) {
	c := Config{TLSCert: "c.pem", TLSKey: "k.pem", TLSClientCA: "mesh.pem"}
	if got := c.TLSClient(); got != (TLSClient{CA: "mesh.pem", Cert: "c.pem", Key: "k.pem"}) {
		t.Fatalf("TLSClient() = %+v", got)
	}
	c.TLSCA = "other.pem"
	if got := c.TLSClient().CA; got != "other.pem" {
		t.Fatalf("with --tls-ca: CA %q", got)
	}
}
