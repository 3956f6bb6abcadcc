package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A client with TLS calls only instances that publish https: a
// plaintext instance is skipped (ErrPlaintextPeer, logged by the
// endpointer), so it cannot downgrade the mesh to cleartext;
// WithPlaintextPeers lets it in again.
func TestClient_WithTLSSkipsPlaintextInstances(t *testing.T) {
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`"tls"`)) }))
	defer secure.Close()
	plain := startBackend(t, "", nil)
	tlsInst := registry.Instance{ID: "tls-1", Name: "echo", Endpoints: []string{secure.URL}}
	tc := secure.Client().Transport.(*http.Transport).TLSClientConfig
	for _, c := range []struct {
		name      string
		opts      []Option
		wantPlain bool
	}{
		{"TLS only", []Option{WithTLS(tc)}, false},
		{"plaintext peers allowed", []Option{WithTLS(tc), WithPlaintextPeers(), WithBalancer(balancer.NewRoundRobin())}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			cl := newClient(t, newRegistry(t, tlsInst, plain.inst), append(c.opts, WithLogger(log.NewLogfmtLogger(logs)))...)
			before := plain.hits.Load()
			for range 20 {
				if err := cl.Invoke(context.Background(), http.MethodGet, "/echo", nil, nil); err != nil {
					t.Fatalf("call: %v", err)
				}
			}
			if gotPlain := plain.hits.Load() > before; gotPlain != c.wantPlain {
				t.Fatalf("the plaintext instance served calls: %v, want %v", gotPlain, c.wantPlain)
			}
			if !c.wantPlain && !strings.Contains(logs.String(), "publishes no TLS endpoint") {
				t.Fatalf("the skipped instance is not logged with why:\n%s", logs)
			}
			// Skipped for good (registry.ErrInvalidInstance), not built
			// again every few seconds as a build that may succeed later is.
			if strings.Contains(logs.String(), "retry=later") {
				t.Fatalf("the plaintext instance is kept to be built again:\n%s", logs)
			}
		})
	}
}

// One instance whose certificate callers cannot verify (renewed late,
// issued by another CA) costs a POST nothing: the handshake sent no
// request, so the attempt goes to another instance.
func TestClient_AnInstanceWithABadCertificateIsPassedOverForAnyCall(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	serve := func(p tlstest.Pair, id string) registry.Instance {
		cfg, err := tlsconf.Server(p.CertFile, p.KeyFile, "")
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`"` + id + `"`))
		}))
		s.TLS = cfg
		s.StartTLS()
		t.Cleanup(s.Close)
		return registry.Instance{ID: id, Name: "echo", Endpoints: []string{s.URL}}
	}
	good, bad := serve(ca.Issue("good"), "good"), serve(other.Issue("bad"), "bad")
	cfg, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, newRegistry(t, good, bad), WithTLS(cfg), WithoutOutlier(), WithBalancer(balancer.NewRoundRobin()))
	for i := range 10 {
		var id string
		if err := c.Invoke(context.Background(), http.MethodPost, "/echo", map[string]int{"n": i}, &id); err != nil || id != "good" {
			t.Fatalf("POST %d: %q, %v; want every call answered by the instance with a good certificate", i, id, err)
		}
	}
}
