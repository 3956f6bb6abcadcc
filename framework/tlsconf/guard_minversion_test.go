package tlsconf_test

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// TestGuard_TLS12FloorHoldsWhenGoDefaultsAreLowered: docs/security.md says
// tlsconf.Server serves TLS ≥ 1.2. Go's own server default is 1.2 too, so
// TestMinimumVersionIsTLS12BothWays passes without tlsconf's MinVersion;
// but a process run with GODEBUG=tls10server=1 (set for some legacy
// client of another server in it) would then accept TLS 1.0 and 1.1 on
// the service port. This runs that test again under that setting, in a
// child process of this test binary, so it fails when the floor is not
// tlsconf's own. The client's floor has no such setting; its
// configuration is checked as built.
func TestGuard_TLS12FloorHoldsWhenGoDefaultsAreLowered(t *testing.T) {
	if os.Getenv("WARREN_GUARD_TLS_CHILD") != "" {
		t.Skip("in the child")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMinimumVersionIsTLS12BothWays$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=tls10server=1", "WARREN_GUARD_TLS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("with GODEBUG=tls10server=1, TestMinimumVersionIsTLS12BothWays failed (%v):\n%s", err, out)
	}

	ca := tlstest.NewCA(t)
	p := ca.Issue("127.0.0.1")
	srv, err := tlsconf.Server(p.CertFile, p.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.Client(ca.CertFile, p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if srv.MinVersion < tls.VersionTLS12 || cli.MinVersion < tls.VersionTLS12 || tlsconf.SelfCheck(srv).MinVersion < tls.VersionTLS12 {
		t.Fatalf("MinVersion: server %#x, client %#x, self-check %#x; want each at least TLS 1.2 (%#x)",
			srv.MinVersion, cli.MinVersion, tlsconf.SelfCheck(srv).MinVersion, tls.VersionTLS12)
	}
}
