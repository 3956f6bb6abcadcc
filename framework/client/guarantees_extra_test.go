package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// The caller cancelling and an answer that does not decode say nothing of
// the instance's health; a reset connection does.
func TestInstanceFailure_NotTheCallersCancelNorAnUndecodableAnswer(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("attempt: %w", context.Canceled),
		&decodeErr{err: errors.New("invalid character 'x'")},
	} {
		if instanceFailure(err) {
			t.Errorf("instanceFailure(%v) = true", err)
		}
	}
	if !instanceFailure(errors.New("read: connection reset by peer")) {
		t.Error("a transport failure does not count against the instance")
	}
}

// Several WithRoundTripper wrappers apply in order, the last one
// outermost: it sees the request first.
func TestWithRoundTripper_LastIsOutermost(t *testing.T) {
	b := startBackend(t, "", nil)
	var mu sync.Mutex
	var order []string
	wrap := func(name string) func(http.RoundTripper) http.RoundTripper {
		return func(next http.RoundTripper) http.RoundTripper {
			return rtFunc(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return next.RoundTrip(r)
			})
		}
	}
	c := newClient(t, newRegistry(t, b.inst), WithRoundTripper(wrap("first")), WithRoundTripper(wrap("last")))
	if err := c.Invoke(context.Background(), "GET", "/x", nil, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != "last" || order[1] != "first" {
		t.Fatalf("wrappers ran in order %v, want [last first]", order)
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// WithTLS applies to every instance's transport unless the transport
// WithTransport makes has a TLS configuration of its own: that one is
// kept.
func TestWithTLS_KeepsTheTransportsOwnTLSConfig(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	p := ca.Issue("good")
	scfg, err := tlsconf.Server(p.CertFile, p.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) }))
	s.TLS = scfg
	s.StartTLS()
	t.Cleanup(s.Close)
	inst := registry.Instance{ID: "good", Name: "echo", Endpoints: []string{s.URL}}
	own, err := tlsconf.Client(ca.CertFile, "", "") // trusts the server
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := tlsconf.Client(other.CertFile, "", "") // does not
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, newRegistry(t, inst), WithTLS(wrong), WithRetry(retry.WithMaxAttempts(1)),
		WithTransport(func() *http.Transport {
			tr := DefaultTransport()
			tr.TLSClientConfig = own
			return tr
		}))
	if err := c.Invoke(context.Background(), "GET", "/x", nil, nil); err != nil {
		t.Fatalf("call with the transport's own TLS config: %v", err)
	}
}
