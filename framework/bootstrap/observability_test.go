package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// start runs svc with args until the test ends and returns its log.
func start(t *testing.T, args []string, build BuildFunc) *syncbuf.Buffer {
	t.Helper()
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Run(ctx, "svc", "1", args, out, build, toys) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit code %d\n%s", code, out)
			}
		case <-time.After(10 * time.Second):
			t.Error("did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "phase=run") {
		if time.Now().After(deadline) {
			t.Fatalf("not running\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

func TestRun_DebugListenerServesMetricsAndTraceStdoutPrintsSpans(t *testing.T) {
	port := freePort(t)
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s",
		"--debug-listen", "127.0.0.1:0", "--trace-stdout"}
	out := start(t, args, hello)

	m := regexp.MustCompile(`debug=(http://\S+/metrics)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("listen line names no debug address\n%s", out)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`warren_http_server_requests_total{code="200",method="GET",route="unmatched"} 1`,
		`warren_registry_registered{service="svc"} 1`,
		`warren_shed_requests_total{outcome="admitted"} 1`, // shedding on by default; probes exempt
		`warren_shed_limit `,
		`go_goroutines `,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"TraceID"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no span on stdout\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRun_MutualTLSRefusesClientsWithoutCertificate(t *testing.T) {
	ca := tlstest.NewCA(t)
	srv, cli := ca.Issue("svc"), ca.Issue("caller")
	port := freePort(t)
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s",
		"--tls-cert", srv.CertFile, "--tls-key", srv.KeyFile, "--tls-client-ca", ca.CertFile}
	var disc registry.Discovery
	build := func(ctx context.Context, d *Deps) (Transports, error) {
		disc = d.Discovery
		return hello(ctx, d)
	}
	out := start(t, args, build) // the self-check passed over mTLS
	if !strings.Contains(out.String(), "advertise=https://") {
		t.Errorf("listen line does not advertise https\n%s", out)
	}
	// The published instance says https, so clients know to use TLS.
	ins, err := disc.Instancer(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Stop()
	ch := make(chan sd.Event, 1)
	ins.Register(ch)
	ev := <-ch
	ins.Deregister(ch)
	if len(ev.Instances) != 1 || !strings.HasPrefix(ev.Instances[0], "https://") {
		t.Fatalf("published %v, want one https instance", ev.Instances)
	}
	if code := Run(context.Background(), "svc", "1", append([]string{"healthcheck"}, args...), io.Discard, nil, toys); code != 0 {
		t.Errorf("healthcheck over mTLS = %d, want 0", code)
	}
	// Without the TLS flags, healthcheck says what is missing.
	var hc bytes.Buffer
	plain := []string{"healthcheck", "--registry", "toy", "--listen", "127.0.0.1:" + port}
	if code := Run(context.Background(), "svc", "1", plain, &hc, nil, toys); code != 1 || !strings.Contains(hc.String(), "speaks HTTPS: give healthcheck the service's --tls-cert and --tls-key") {
		t.Errorf("healthcheck without TLS flags = %d, %q; want 1 and the flags it needs", code, hc.String())
	}

	url := "https://127.0.0.1:" + port + "/hello"
	call := func(c *tls.Config) error {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c}, Timeout: 5 * time.Second}
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	noCert, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := call(noCert); err == nil {
		t.Error("a client without a certificate was served")
	}
	other := tlstest.NewCA(t).Issue("stranger")
	foreign, err := tlsconf.Client(ca.CertFile, other.CertFile, other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(foreign); err == nil {
		t.Error("a client with a certificate from another CA was served")
	}
	withCert, err := tlsconf.Client(ca.CertFile, cli.CertFile, cli.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(withCert); err != nil {
		t.Errorf("a client with a certificate from the CA: %v", err)
	}

	// The framework's client, through discovery: refused without a
	// certificate, served with one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{{"no client certificate", noCert, false}, {"client certificate", withCert, true}} {
		c, err := client.New(ctx, disc, "svc", client.WithTLS(tc.cfg), client.WithRetry())
		if err != nil {
			t.Fatal(err)
		}
		err = c.Invoke(ctx, "GET", "/hello", nil, nil)
		c.Close()
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// The debug listener serves the profiles by default; --debug-pprof=false
// leaves /metrics alone on it, for a port a scraper reaches.
func TestRun_DebugPprofFalseServesMetricsWithoutProfiles(t *testing.T) {
	for _, tc := range []struct {
		flag     string
		profiles int
	}{{"--debug-pprof=true", http.StatusOK}, {"--debug-pprof=false", http.StatusNotFound}} {
		t.Run(tc.flag, func(t *testing.T) {
			args := []string{"--registry", "toy", "--listen", "127.0.0.1:0", "--grace", "0s", "--debug-listen", "127.0.0.1:0", tc.flag}
			out := start(t, args, hello)
			m := regexp.MustCompile(`debug=(http://\S+)/metrics`).FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("listen line names no debug address\n%s", out)
			}
			for path, want := range map[string]int{"/metrics": http.StatusOK, "/debug/pprof/": tc.profiles, "/debug/pprof/cmdline": tc.profiles} {
				resp, err := http.Get(m[1] + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("%s %s: %d, want %d", tc.flag, path, resp.StatusCode, want)
				}
			}
		})
	}
}

// With TLS on, the clients a service makes call only TLS instances unless
// --tls-plaintext-peers lets plain ones in (a mesh moving to TLS).
func TestRun_TLSPlaintextPeersReachesTheClients(t *testing.T) {
	ca := tlstest.NewCA(t)
	for _, c := range []struct {
		flags []string
		want  bool
	}{{nil, false}, {[]string{"--tls-plaintext-peers"}, true}} {
		var got, hasTLS bool
		build := func(ctx context.Context, d *Deps) (Transports, error) {
			got, hasTLS = client.PlaintextPeersOf(d.ClientOptions()...), client.TLSOf(d.ClientOptions()...) != nil
			return Transports{}, errors.New("stop here")
		}
		args := append([]string{"--registry", "toy", "--listen", "127.0.0.1:0", "--tls-ca", ca.CertFile}, c.flags...)
		if code := Run(context.Background(), "svc", "1", args, io.Discard, build, toys); code != 1 {
			t.Fatalf("%v: exit %d, want 1 (the build's error)", c.flags, code)
		}
		if !hasTLS || got != c.want {
			t.Fatalf("%v: client TLS %v, plaintext peers %v; want TLS and %v", c.flags, hasTLS, got, c.want)
		}
	}
}
