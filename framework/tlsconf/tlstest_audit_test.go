package tlsconf_test

import (
	"testing"

	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// A certificate issued for a service named "ca" does not replace the CA's
// own file (both were DIR/ca.pem): clients trusting CA.CertFile still
// verify every certificate the CA issued, that one and the others.
func TestTLSTest_IssuingANameLikeTheCAsFileKeepsTheCA(t *testing.T) {
	ca := tlstest.NewCA(t)
	named := ca.Issue("ca")
	other := ca.Issue("svc")
	cli, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []tlstest.Pair{named, other} {
		srv, err := tlsconf.Server(p.CertFile, p.KeyFile, "")
		if err != nil {
			t.Fatal(err)
		}
		c := cli.Clone()
		c.ServerName = "localhost"
		if _, cliErr := handshake(t, srv, c); cliErr != nil {
			t.Errorf("a client trusting CA.CertFile refused %s: %v", p.CertFile, cliErr)
		}
	}
}
