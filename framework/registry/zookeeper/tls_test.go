package zookeeper

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/zookeeper/zktest"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// ZooKeeper's secureClientPort (Netty, PEM key and trust stores, client
// certificates required) is reached with WithTLS: a registrar over mutual
// TLS publishes, a reader over TLS sees it; a client without a
// certificate, or one that does not trust the server's CA, gets nowhere.
func TestTLS_MutualTLSToTheSecureClientPort(t *testing.T) {
	ca := tlstest.NewCA(t)
	server := ca.Issue("zookeeper")
	// ZooKeeper's PEM key store is the key and its certificate in one file.
	keyStore := filepath.Join(t.TempDir(), "zookeeper-keystore.pem")
	var pemBytes []byte
	for _, f := range []string{server.KeyFile, server.CertFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes = append(pemBytes, b...)
	}
	if err := os.WriteFile(keyStore, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := startServer(t, zktest.WithConfig(fmt.Sprintf(`serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
secureClientPort=%d
secureClientPortAddress=127.0.0.1
ssl.keyStore.location=%s
ssl.keyStore.type=PEM
ssl.trustStore.location=%s
ssl.trustStore.type=PEM
ssl.clientAuth=need
`, port, keyStore, ca.CertFile)))
	_ = srv
	secure := fmt.Sprintf("127.0.0.1:%d", port)

	client := ca.Issue("warren")
	cfg, err := tlsconf.Client(ca.CertFile, client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	root := testRoot(t)
	r, _ := newTestRegistry(t, secure, root, WithTLS(cfg))
	inst := testInstance("tls", 1)
	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatalf("Register over mutual TLS: %v", err)
	}
	reader, _ := newTestRegistry(t, secure, root, WithTLS(cfg))
	watch(t, reader, "tls").await(t, 30*time.Second, "the instance over TLS", noErr(exactly(inst.ID)))

	// No client certificate: the server refuses the handshake.
	noCert, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// Not trusting the server's CA: the client refuses it.
	otherCA := tlstest.NewCA(t)
	untrusting, err := tlsconf.Client(otherCA.CertFile, client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*tls.Config{"no client certificate": noCert, "untrusted server": untrusting} {
		bad, _ := newTestRegistry(t, secure, root, WithTLS(c))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := bad.Register(ctx, testInstance("tls", 2))
		cancel()
		if err == nil {
			t.Errorf("%s: Register succeeded", name)
		}
		// The dial's own error, not only "could not connect to a server"
		// (report j47b).
		if name == "untrusted server" && (err == nil || !strings.Contains(err.Error(), "last connect error: connect to "+secure) ||
			!strings.Contains(err.Error(), "certificate signed by unknown authority")) {
			t.Errorf("%s: Register = %v; want the TLS handshake's error", name, err)
		}
	}
}
