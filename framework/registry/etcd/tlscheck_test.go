package etcd

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// An http:// endpoint makes clientv3 drop TLS, so with a CA or a client
// certificate it would send everything, the password too, in clear: New
// and the flags refuse that pair, naming the endpoint; https:// and a bare
// host:port (which means TLS when TLS is configured) pass.
func TestTLS_PlaintextEndpointWithTLSIsRefused(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert := ca.Issue("client")
	r, err := New(context.Background(), WithEndpoints("127.0.0.1:2379", "http://127.0.0.1:2380"), WithTLSFiles(ca.CertFile, "", ""))
	if err == nil || !strings.Contains(err.Error(), `"http://127.0.0.1:2380" is plaintext`) || !strings.Contains(err.Error(), "https://") {
		t.Errorf("New with http:// and TLS files: %v; want it refused, naming the endpoint", err)
	}
	if r != nil {
		r.Close()
	}
	if _, err := New(context.Background(), WithEndpoints("http://127.0.0.1:2379"), WithTLS(&tls.Config{})); err == nil {
		t.Error("New with http:// and WithTLS: accepted")
	}
	for _, ep := range []string{"127.0.0.1:2379", "https://127.0.0.1:2379"} {
		r, err := New(context.Background(), WithEndpoints(ep), WithTLSFiles(ca.CertFile, cert.CertFile, cert.KeyFile))
		if err != nil {
			t.Errorf("New(%s) with TLS: %v", ep, err)
			continue
		}
		r.Close()
	}
	if r, err := New(context.Background(), WithEndpoints("http://127.0.0.1:2379")); err != nil {
		t.Errorf("http:// without TLS: %v", err)
	} else {
		r.Close()
	}

	for _, args := range [][]string{
		{"--etcd-endpoints=http://127.0.0.1:2379", "--etcd-ca=" + ca.CertFile},
		{"--etcd-endpoints=127.0.0.1:2379,http://127.0.0.1:2379", "--etcd-cert=" + cert.CertFile, "--etcd-key=" + cert.KeyFile},
	} {
		err := parseBackend(t, args...).Validate()
		if err == nil || !contains(err.Error(), "--etcd-endpoints", `"http://127.0.0.1:2379" is plaintext`, "--etcd-ca", "https://", "bare host:port") {
			t.Errorf("%v: %v; want refused naming the flag, the endpoint and the forms wanted", args, err)
		}
	}
	for _, ep := range []string{"127.0.0.1:2379", "https://127.0.0.1:2379"} {
		if err := parseBackend(t, "--etcd-endpoints="+ep, "--etcd-ca="+ca.CertFile).Validate(); err != nil {
			t.Errorf("%s with --etcd-ca: %v", ep, err)
		}
	}
}

// A user name without a password (or the reverse) was ignored: clientv3
// authenticates only with both, so the service ran as its certificate's CN
// or unauthenticated, not as the user the operator named.
func TestAuth_HalfACredentialPairIsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--etcd-username=svc"},
		{"--etcd-password=pw"},
	} {
		err := parseBackend(t, args...).Validate()
		if err == nil || !contains(err.Error(), "--etcd-username", "--etcd-password", "go together") {
			t.Errorf("%v: %v; want refused, naming both flags", args, err)
		}
	}
	if err := parseBackend(t, "--etcd-username=svc", "--etcd-password=pw").Validate(); err != nil {
		t.Errorf("both given: %v", err)
	}
	for _, o := range []Option{WithAuth("svc", ""), WithAuth("", "pw")} {
		if r, err := New(context.Background(), o); err == nil {
			r.Close()
			t.Error("New with half a WithAuth: accepted")
		}
	}
}

// Credentials written into an endpoint are refused, and the refusal does
// not repeat them: it ends up in logs and on terminals.
func TestEndpoint_RefusalDoesNotEchoCredentials(t *testing.T) {
	for _, ep := range []string{"http://svc:PWinURL1@127.0.0.1:1", "https://PWinURL1@127.0.0.1:1/", "svc:PWinURL1@127.0.0.1:1", "http://svc:PWinURL1@[::bad"} {
		err := parseBackend(t, "--etcd-endpoints="+ep).Validate()
		if err == nil || strings.Contains(err.Error(), "PWinURL1") || !strings.Contains(err.Error(), "xxxxx@") {
			t.Errorf("flag %s: %v; want refused with the credentials masked", ep, err)
		}
		r, err := New(context.Background(), WithEndpoints(ep))
		if err == nil || strings.Contains(err.Error(), "PWinURL1") || !strings.Contains(err.Error(), "xxxxx@") {
			t.Errorf("New(%s): %v; want refused with the credentials masked", ep, err)
		}
		if r != nil {
			r.Close()
		}
	}
}

// A CA flag pointing at a key (or any non-certificate) said "x509:
// malformed tbs certificate", naming neither the file nor the flag.
func TestTLS_BadCAFileIsNamed(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert := ca.Issue("client")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{cert.KeyFile, garbage} {
		s := parseBackend(t, "--etcd-endpoints=127.0.0.1:1", "--etcd-ca="+file)
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		r, err := s.Open(context.Background(), registry.OpenOptions{})
		if err == nil || !contains(err.Error(), "--etcd-ca", file) {
			t.Errorf("--etcd-ca=%s: %v; want an error naming the flag and the file", file, err)
		}
		if r != nil {
			r.Close()
		}
		r2, err := New(context.Background(), WithEndpoints("127.0.0.1:1"), WithTLSFiles(file, "", ""))
		if err == nil || !contains(err.Error(), "CA file", file) {
			t.Errorf("WithTLSFiles(%s): %v; want an error naming the CA file", file, err)
		}
		if r2 != nil {
			r2.Close()
		}
	}
	// The key pair is named too.
	s := parseBackend(t, "--etcd-endpoints=127.0.0.1:1", "--etcd-ca="+ca.CertFile, "--etcd-cert="+cert.KeyFile, "--etcd-key="+cert.KeyFile)
	if r, err := s.Open(context.Background(), registry.OpenOptions{}); err == nil || !contains(err.Error(), "--etcd-cert", "--etcd-key", cert.KeyFile) {
		t.Errorf("key given as certificate: %v", err)
		if r != nil {
			r.Close()
		}
	}
}
