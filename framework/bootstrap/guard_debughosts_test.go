package bootstrap

import (
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// docs/observability.md: the debug listener answers IP addresses,
// localhost and its own and the advertised host, and the names
// --debug-allowed-hosts lists; any other Host gets 421 (DNS rebinding).
// app's TestDebugListener checks WithDebugAllowedHosts; nothing checked
// that the flag reaches it: dropping app.WithDebugAllowedHosts from Run
// passed every test, and a scraper that reaches the listener through an
// admin name got 421 for all its scrapes.
func TestRun_DebugAllowedHostsFlagReachesTheDebugListener(t *testing.T) {
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:0", "--grace", "0s",
		"--debug-listen", "127.0.0.1:0", "--debug-allowed-hosts", "metrics.admin.example"}
	out := start(t, args, hello)
	m := regexp.MustCompile(`debug=(http://\S+/metrics)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("listen line names no debug address\n%s", out)
	}
	cl := &http.Client{Timeout: 10 * time.Second}
	for host, want := range map[string]int{
		"metrics.admin.example": http.StatusOK,
		"rebound.example":       http.StatusMisdirectedRequest,
	} {
		req, err := http.NewRequest(http.MethodGet, m[1], nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
