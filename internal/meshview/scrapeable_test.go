package meshview

import (
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// The page scrapes only a metrics URL at one of the instance's own hosts,
// path /metrics, nothing else (report j49b: any record could make the page
// GET any URL with the operator's certificate).
func TestScrapeable(t *testing.T) {
	inst := registry.Instance{ID: "u1", Name: "user", Endpoints: []string{"http://10.0.0.7:8080", "grpc://10.0.0.7:9090"}}
	for raw, ok := range map[string]bool{
		"http://10.0.0.7:9100/metrics":                  true,
		"https://10.0.0.7:9100/metrics":                 true,
		"http://10.0.0.8:9100/metrics":                  false, // another host
		"http://10.0.0.7:9100/admin/v1/users":           false,
		"http://10.0.0.7:9100/metrics?delete=all":       false,
		"http://op:pw@10.0.0.7:9100/metrics":            false,
		"ftp://10.0.0.7:9100/metrics":                   false,
		"http://10.0.0.7/metrics":                       false, // no port
		"http://internal.example:9100/metrics":          false,
		"http://10.0.0.7:9100/metrics#x":                false,
		"http://10.0.0.7:9100/metrics/../admin":         false,
		"http://[::1]:9100/metrics":                     false,
		"http://10.0.0.7:9100/%2e%2e/metrics":           false,
		"http://10.0.0.7:9100/metrics\nX-Injected: yes": false,
	} {
		if err := scrapeable(inst, raw); (err == nil) != ok {
			t.Errorf("scrapeable(%q) = %v, want ok=%t", raw, err, ok)
		}
	}
}
