package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
)

func TestRun_WrongAdvertisedAddressFailsNamingItAndNeverRegisters(t *testing.T) {
	// A port that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	// A port answered by another process's /healthz.
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	otherSrv := &http.Server{Handler: okHandler(), ReadHeaderTimeout: time.Second}
	go otherSrv.Serve(other)
	defer otherSrv.Close()

	for name, tc := range map[string]struct{ adv, want string }{
		"refused":       {dead, "connection refused"},
		"other process": {other.Addr().String(), "another process"},
	} {
		t.Run(name, func(t *testing.T) {
			j := &journal{}
			reg := recorder{memory.New(), j}
			// 2s: the first probe's answer must come back within it on a
			// loaded machine; the error then names that answer, even when
			// the deadline cuts a later probe short.
			a, err := New("svc", okHandler(), reg, testOptions(j, WithAdvertise(tc.adv), WithSelfCheckTimeout(2*time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			// The deadline only keeps a self-check that wrongly passes
			// (and then serves until cancelled) from hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = a.Run(ctx)
			if !errors.Is(err, ErrSelfCheck) || !strings.Contains(err.Error(), tc.adv) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v; want ErrSelfCheck naming %s and %q", err, tc.adv, tc.want)
			}
			if indexOf(j.list(), "registry:register") >= 0 {
				t.Fatalf("registered despite failed self-check: %v", j.list())
			}
		})
	}
}

// When the deadline cuts the last probe short, the error still names the
// answer the probes got before it, not "context deadline exceeded".
func TestRun_SelfCheckErrorNamesTheLastAnswerNotTheDeadline(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	otherSrv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			io.WriteString(w, `{"ok":true}`) // another process's answer
			return
		}
		select { // then it hangs until the probe gives up
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})}
	go otherSrv.Serve(other)
	defer otherSrv.Close()
	j := &journal{}
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithAdvertise(other.Addr().String()), WithSelfCheckTimeout(3*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if !errors.Is(err, ErrSelfCheck) || !strings.Contains(err.Error(), "another process") || calls.Load() < 2 {
		t.Fatalf("Run = %v after %d probes; want ErrSelfCheck naming \"another process\"", err, calls.Load())
	}
}

func TestRun_SelfCheckOffSkipsIt(t *testing.T) {
	j := &journal{}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithAdvertise(dead), WithSelfCheck(false))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// A certificate callers cannot accept for the advertised address (no IP
// SAN for it) fails the self-check at once, saying it is the certificate,
// and does not send the operator to turn the self-check off: that would
// register an instance no caller can reach.
func TestRun_CertificateCallersCannotVerifyFailsTheSelfCheckSayingSo(t *testing.T) {
	ca := tlstest.NewCA(t)
	pair := ca.IssueFor("svc", "svc.internal") // a DNS name only
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	j := &journal{}
	reg := recorder{memory.New(), j}
	a, err := New("svc", okHandler(), reg, testOptions(j,
		WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}}),
		WithSelfCheckTLS(&tls.Config{RootCAs: roots}), // as callers verify
		WithSelfCheckTimeout(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	// Well inside the self-check's minute: the error must not wait it out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if !errors.Is(err, ErrSelfCheck) || !strings.Contains(err.Error(), "IP SAN") || strings.Contains(err.Error(), "turn the self-check off") {
		t.Fatalf("Run = %v; want ErrSelfCheck naming the certificate, without the advice to turn the self-check off", err)
	}
	if indexOf(j.list(), "registry:register") >= 0 {
		t.Fatal("registered an instance callers cannot verify")
	}
}
