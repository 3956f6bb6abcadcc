package meshview

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// docs/mesh-page.md: one probe per instance every 2 s (--probe-every),
// rates and quantiles over the last 10 s (--window), a probe that does not
// answer within 2 s is none, and redirects are not followed (a record
// must not send the page, with the operator's client certificate,
// anywhere else). No test read these: a View probing every 3 s, over 5 s,
// with a 5 s probe timeout or following redirects passed every test.
func TestNew_DefaultsAreTheDocumentedOnes(t *testing.T) {
	reg := memory.New()
	defer reg.Close()
	v, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if v.cfg.probeEvery != 2*time.Second || v.cfg.window != 10*time.Second {
		t.Errorf("probe every %s over a window of %s; docs say 2s and 10s", v.cfg.probeEvery, v.cfg.window)
	}
	if ProbeTimeout != 2*time.Second || v.cfg.client.Timeout != 2*time.Second {
		t.Errorf("probe timeout %s (client %s); docs say 2s", ProbeTimeout, v.cfg.client.Timeout)
	}
	// Also with a client of the caller's own (warren page's TLS client).
	for name, c := range map[string]*http.Client{"default": v.cfg.client, "WithHTTPClient": withClient(t, reg)} {
		if c.CheckRedirect == nil || !errors.Is(c.CheckRedirect(nil, nil), http.ErrUseLastResponse) {
			t.Errorf("%s: the probe client follows redirects", name)
		}
	}
}

func withClient(t *testing.T, reg *memory.Registry) *http.Client {
	t.Helper()
	v, err := New(reg, WithHTTPClient(&http.Client{Timeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return v.cfg.client
}
