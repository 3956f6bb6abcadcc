package app

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// The debug listener answers IP addresses, localhost, the advertised host
// (the published /metrics URL's, for scrapers following discovery) and
// the names WithDebugAllowedHosts adds; a DNS-rebinding page's name gets
// 421, not the process's command line.
func TestRun_DebugListenerRefusesHostsItDoesNotAnswerTo(t *testing.T) {
	j := &journal{}
	pprof := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "--etcd-password=secret") })
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithDebugListener("127.0.0.1:0", pprof),
		WithAdvertise("svc.internal"), WithSelfCheck(false), WithDebugAllowedHosts("metrics.admin"))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	addr := a.DebugAddr()
	for host, want := range map[string]int{
		addr:                      200,
		"localhost":               200,
		"svc.internal:9100":       200,
		"METRICS.admin":           200,
		"attacker.example":        421,
		"attacker.example:" + "1": 421,
	} {
		req, err := http.NewRequest("GET", "http://"+addr+"/debug/pprof/cmdline", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
	if _, err := New("svc", okHandler(), memory.New(), WithDebugAllowedHosts("admin:9100")); err == nil {
		t.Error("WithDebugAllowedHosts took a name with a port")
	}
}
