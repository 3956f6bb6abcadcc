package tlsconf_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

func TestServer_WithClientCARequiresClientCerts(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue("127.0.0.1")
	cfg, err := tlsconf.Server(p.CertFile, p.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	cfg, err = tlsconf.Server(p.CertFile, p.KeyFile, "")
	if err != nil || cfg.ClientAuth != tls.NoClientCert {
		t.Fatalf("without client CA: %+v, %v", cfg, err)
	}
}

func TestClient_PresentsCertAndTrustsCA(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue("client")
	cfg, err := tlsconf.Client(ca.CertFile, p.CertFile, p.KeyFile)
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("%+v, %v", cfg, err)
	}
}

func TestBadInputsNameTheProblem(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue("x")
	notPEM := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	cases := map[string]func() error{
		"server without key":    func() error { _, err := tlsconf.Server(p.CertFile, "", ""); return err },
		"server missing file":   func() error { _, err := tlsconf.Server("/nonexistent.pem", p.KeyFile, ""); return err },
		"client CA not PEM":     func() error { _, err := tlsconf.Client(notPEM, "", ""); return err },
		"client half pair":      func() error { _, err := tlsconf.Client("", p.CertFile, ""); return err },
		"server client CA junk": func() error { _, err := tlsconf.Server(p.CertFile, p.KeyFile, notPEM); return err },
	}
	want := map[string]string{
		"server without key": "both a certificate and a key", "server missing file": "nonexistent.pem",
		"client CA not PEM": "no PEM certificate", "client half pair": "both a certificate and a key",
		"server client CA junk": "no PEM certificate",
	}
	for name, f := range cases {
		if err := f(); err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, want[name])
		}
	}
}
