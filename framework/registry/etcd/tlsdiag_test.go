package etcd

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

// etcd answers a wrong TLS setup with a TLS error, but clientv3 only
// reports that its time ran out ("no answer … within the dial timeout",
// "grant lease …: context deadline exceeded"), sending the operator to
// look for a firewall. The Registry probes the endpoint and says what
// etcd answered, on both paths: a client that authenticates (the error of
// its attempts) and one that does not (the registration's grant), and the
// error still matches context.DeadlineExceeded. Discovery's errors (an
// instancer's failed listing) say it as well.
func TestTLS_FailuresSayWhatEtcdAnswered(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	server, clientCert := ca.Issue("etcd"), ca.Issue("warren-client")
	strange := other.Issue("warren-client")
	srv := startTLSEtcd(t, ca, server)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel) // parallel subtests outlive the function
	prefix := testPrefix(t)
	enableAuthAsAdmin(t, ctx, srv, ca, clientCert, prefix)
	tlsEP, plainEP := srv.Endpoints()[0], shared.Endpoints()[0]
	auth := WithAuth("svc", "svc-pw")
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"plaintext client, TLS etcd", []Option{WithEndpoints(tlsEP)},
			"the server at " + tlsEP + " speaks TLS but the client does not"},
		{"plaintext client with a password, TLS etcd", []Option{WithEndpoints(tlsEP), auth},
			"the server at " + tlsEP + " speaks TLS but the client does not"},
		{"CA of another authority", []Option{WithEndpoints(tlsEP), WithTLSFiles(other.CertFile, clientCert.CertFile, clientCert.KeyFile), auth},
			"TLS handshake with " + tlsEP + " failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"https:// without a CA", []Option{WithEndpoints("https://" + tlsEP), auth},
			"no CA was given"},
		{"no client certificate", []Option{WithEndpoints(tlsEP), WithTLSFiles(ca.CertFile, "", ""), auth},
			"remote error: tls: certificate required; etcd asks for a client certificate"},
		{"client certificate of another authority", []Option{WithEndpoints(tlsEP), WithTLSFiles(ca.CertFile, strange.CertFile, strange.KeyFile)},
			"TLS handshake with " + tlsEP + " failed: remote error: tls:"},
		{"TLS client, plaintext etcd", []Option{WithEndpoints(plainEP), WithTLSFiles(ca.CertFile, clientCert.CertFile, clientCert.KeyFile)},
			plainEP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out its registration timeout
			base := []Option{WithPrefix(prefix), WithTTL(testTTL), WithBackoff(50*time.Millisecond, 500*time.Millisecond),
				WithDialTimeout(time.Second), WithRequestTimeout(time.Second)}
			r, err := New(ctx, append(base, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rctx, cancel := context.WithTimeout(ctx, 6*time.Second)
			defer cancel()
			err = r.Register(rctx, testInstance(4243))
			switch {
			case err == nil:
				t.Fatal("registered")
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q; want it to contain %q", err, tc.want)
			case !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("error %v does not match context.DeadlineExceeded", err)
			}
			t.Logf("%v", err)

			// Discovery says it too: the instancer's failed listings
			// reach its subscribers with the same explanation.
			in, err := r.NewInstancer(ctx, "user")
			if err != nil {
				t.Fatal(err)
			}
			defer in.Stop()
			events := make(chan sd.Event, 16)
			in.Register(events)
			defer in.Deregister(events)
			timeout := time.After(30 * time.Second)
			for {
				var ev sd.Event
				select {
				case ev = <-events:
				case <-timeout:
					t.Fatalf("no instancer error containing %q within 30s", tc.want)
				}
				if ev.Err != nil && strings.Contains(ev.Err.Error(), tc.want) {
					t.Logf("instancer: %v", ev.Err)
					break
				}
			}
		})
	}
}

// A caller that stops waiting before one attempt ends (a register timeout
// shorter than the request timeout) gets more than "context canceled":
// the error says what a connection to the endpoints found (report j47c: a
// refused address and an unknown host failed alike).
func TestRegister_GivingUpSaysWhyThereIsNoConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	r, err := New(context.Background(), WithEndpoints(refused), WithPrefix(testPrefix(t)),
		WithDialTimeout(10*time.Second), WithRequestTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = r.Register(ctx, registry.Instance{ID: "gu-1", Name: "gu", Endpoints: []string{"http://127.0.0.1:1"}})
	if err == nil || !strings.Contains(err.Error(), "no connection to etcd: connect to "+refused) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Register = %v; want the refused connection named", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Fatalf("Register = %v; want it to wrap the context's error", err)
	}
	// warren ls lists through Services: the same (report j47c).
	lctx, lcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer lcancel()
	if _, err := r.Services(lctx); err == nil || !strings.Contains(err.Error(), "no connection to etcd: connect to "+refused) {
		t.Fatalf("Services = %v; want the refused connection named", err)
	}
}

// An endpoint that is not etcd's client port (an HTTP server, etcd's own
// peer port) gave only "context deadline exceeded", 5 s per attempt,
// forever (report j53d finding 7): the error says what answered there.
func TestRegister_AnEndpointThatIsNotEtcdIsNamed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not etcd", http.StatusNotFound)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	r, err := New(context.Background(), WithEndpoints(addr), WithPrefix(testPrefix(t)),
		WithDialTimeout(time.Second), WithRequestTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = r.Register(ctx, registry.Instance{ID: "ne-1", Name: "ne", Endpoints: []string{"http://127.0.0.1:1"}})
	if err == nil || !strings.Contains(err.Error(), "the server at "+addr+" is not an etcd client port") || !strings.Contains(err.Error(), "HTTP/1.") {
		t.Fatalf("Register = %v; want it to say the server at %s is not etcd and what it answered", err, addr)
	}
	t.Logf("Register: %v", err)
}
