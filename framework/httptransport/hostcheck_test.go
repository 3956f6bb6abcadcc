package httptransport

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A request whose Host is an IP address, localhost or a listed name is
// served; any other name — a DNS-rebinding page's — gets 421 and a JSON
// error, so the page cannot read what the listener serves.
func TestAllowedHosts_RefusesNamesNotListed(t *testing.T) {
	h := AllowedHosts(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("secret")) }),
		"--debug-allowed-hosts", "Admin.Example", "node-7.")
	for host, want := range map[string]int{
		"127.0.0.1:9100":        200,
		"10.1.2.3":              200, // Prometheus by pod IP
		"[::1]:9100":            200,
		"[fe80::1%25eth0]:9100": 200,
		"localhost:9100":        200,
		"LOCALHOST.":            200,
		"admin.example:9100":    200,
		"node-7":                200,
		"":                      200, // HTTP/1.0 without Host: no browser
		"attacker.example":      421,
		"attacker.example:80":   421,
		"localhost.attacker.io": 421,
		"127.0.0.1.nip.io:9100": 421,
	} {
		req := httptest.NewRequest("GET", "/debug/pprof/cmdline", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
			continue
		}
		if want == 421 {
			var body ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code != CodeHostNotAllowed {
				t.Errorf("Host %q: body %s; want a JSON error with code %s", host, rec.Body, CodeHostNotAllowed)
			}
		}
	}
}

func TestCheckAllowedHost(t *testing.T) {
	for h, ok := range map[string]bool{
		"admin.example": true, "10.0.0.1": true, "::1": true, "[::1]": true,
		"": false, "admin.example:9100": false, "http://admin.example": false, "a b": false,
	} {
		if err := CheckAllowedHost(h); (err == nil) != ok {
			t.Errorf("CheckAllowedHost(%q) = %v", h, err)
		}
	}
}
