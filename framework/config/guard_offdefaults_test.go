package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// README.md, "Observability and security": metrics, profiles and traces
// are off until asked for (--debug-listen, --otlp-endpoint,
// --trace-stdout), and a served request follows its caller's trace
// until --trace-public-endpoint; TLS is off until --tls-cert; snapshots and the data
// directory are off until given. TestParse_DefaultsAreTheDocumentedOnes
// pins the numbers; these empty defaults no test read: a Default with a
// debug listener or stdout tracing on passed every test.
func TestParse_OffUntilAskedForByDefault(t *testing.T) {
	c, err := Parse("user", "", backends, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("debug-listen=%q otlp-endpoint=%q trace-stdout=%v trace-public-endpoint=%v tls-cert=%q tls-key=%q tls-client-ca=%q tls-ca=%q tls-plaintext-peers=%v "+
		"snapshot-dir=%q data-dir=%q advertise=%q id=%q zone=%q weight=%d tags=%q debug-allowed-hosts=%q",
		c.DebugListen, c.OTLPEndpoint, c.TraceStdout, c.TracePublicEndpoint, c.TLSCert, c.TLSKey, c.TLSClientCA, c.TLSCA, c.TLSPlaintextPeers,
		c.SnapshotDir, c.DataDir, c.Advertise, c.ID, c.Zone, c.Weight, c.Tags, c.DebugAllowedHosts)
	want := `debug-listen="" otlp-endpoint="" trace-stdout=false trace-public-endpoint=false tls-cert="" tls-key="" tls-client-ca="" tls-ca="" tls-plaintext-peers=false ` +
		`snapshot-dir="" data-dir="" advertise="" id="" zone="" weight=0 tags=[] debug-allowed-hosts=[]`
	if got != want {
		t.Fatalf("defaults\n got %s\nwant %s", got, want)
	}
}

// docs/security.md and production.md: secrets (a password, a token) are
// never printed. --help prints each flag's default; a program's own
// default for a secret flag (FlagDefault) is shown as "(set)", never as
// the value: without the masking in usage the value was printed and no
// test failed.
func TestParse_HelpMasksASecretFlagsDefault(t *testing.T) {
	var help bytes.Buffer
	_, err := Parse("user", "", backends, []string{"--help"}, &help, FlagDefault{Flag: "toy-token", Value: "s3cr3tDefault"})
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	if strings.Contains(help.String(), "s3cr3tDefault") {
		t.Fatalf("--help prints a secret flag's default:\n%s", help.String())
	}
	for _, line := range strings.Split(help.String(), "\n") {
		if strings.HasPrefix(line, "--toy-token") && !strings.Contains(line, "(set)") {
			t.Errorf("--toy-token line does not say its default is set: %q", line)
		}
	}
}
