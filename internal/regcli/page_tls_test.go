package regcli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// `warren page --tls-ca --tls-cert --tls-key` probes an HTTPS instance of
// a mesh with a private CA and mutual TLS (without them it would be
// "unreachable": unknown authority); and the page answers no Host but an
// IP address, localhost or its listen host, so a DNS-rebinding page
// cannot read the mesh's state.
func TestPage_ProbesATLSMeshAndRefusesOtherHosts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, r := startEtcd(t, ctx)
	ca := tlstest.NewCA(t)
	server, page := ca.Issue("user"), ca.Issue("page")
	scfg, err := tlsconf.Server(server.CertFile, server.KeyFile, ca.CertFile) // mTLS
	if err != nil {
		t.Fatal(err)
	}
	user := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok","checks":{}}`)
	}))
	user.TLS = scfg
	user.StartTLS()
	defer user.Close()
	register(t, r, registry.Instance{ID: "user-1", Name: "user", Endpoints: []string{user.URL}})

	pctx, stop := context.WithCancel(ctx)
	defer stop()
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Page(pctx, Env{Stdout: out, Stderr: out, Backends: registry.Backends{etcd.Backend()}},
			[]string{"--etcd-endpoints=" + strings.Join(srv.Endpoints(), ","), "--page-listen=localhost:0", "--probe-every=50ms",
				"--tls-ca", ca.CertFile, "--tls-cert", page.CertFile, "--tls-key", page.KeyFile})
	}()
	waitLines(t, out, 1)
	_, url, ok := strings.Cut(strings.TrimSpace(out.String()), "http://")
	if !ok {
		t.Fatalf("warren page printed %q, want its URL", out.String())
	}
	url = "http://" + strings.Fields(url)[0]
	get := func(host string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, "GET", url+"api/state", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("attacker.example:80"); code != http.StatusMisdirectedRequest || !strings.Contains(body, `"host_not_allowed"`) {
		t.Fatalf("Host attacker.example: %d %s; want 421 host_not_allowed", code, body)
	}
	if code, _ := get("localhost"); code != 200 {
		t.Fatalf("Host localhost: %d, want 200", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := get("")
		if strings.Contains(body, `"ready": true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never saw user-1 ready over mutual TLS:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("warren page ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("warren page did not end after interrupt")
	}
}
