package grpcserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The gRPC TLS port reports its refused handshakes through the process's
// handshake log, as HTTPS does: a caller without a client certificate is
// logged with its address and the reason, and a flood of failed
// handshakes writes one line, then a summary, while each is counted.
func TestTLS_FailedHandshakesAreLoggedThrottled(t *testing.T) {
	ca := tlstest.NewCA(t)
	pair := ca.Issue("server")
	scfg, err := tlsconf.Server(pair.CertFile, pair.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, "n") }, grpcserver.WithAddr("127.0.0.1:0"), grpcserver.WithTLS(scfg))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	logger := log.NewLogfmtLogger(&logs)
	hl := transport.NewHandshakeLog(logger, time.Hour) // no summary before Flush
	addr, err := s.Listen(transport.Host{Service: "echo", Nonce: "n", Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second),
		Logger: logger, Handshakes: hl})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	waitFailures := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for hl.Failures()["grpc"] < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := hl.Failures()["grpc"]; got != n {
			t.Fatalf("counted %d failed handshakes, want %d\n%s", got, n, logs.String())
		}
	}

	// A caller without a client certificate: refused, and logged.
	noCert, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(credentials.NewTLS(noCert)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := grpctest.Say(ctx, cc, "x"); err == nil {
		t.Fatal("a caller without a certificate was served")
	}
	cc.Close()
	waitFailures(1)
	if l := logs.String(); !strings.Contains(l, `msg="TLS handshake failed" transport=grpc`) || !strings.Contains(l, "certificate") {
		t.Fatalf("the refusal is not logged with its reason:\n%s", l)
	}

	// A flood: counted, not logged one by one.
	const n = 300
	transporttest.FailHandshakes(t, addr.String(), n)
	waitFailures(n + 1)
	if got := strings.Count(logs.String(), "TLS handshake failed"); got != 1 {
		t.Fatalf("%d failed handshakes wrote %d lines, want 1 (then a summary):\n%.2000s", n+1, got, logs.String())
	}
	hl.Flush()
	if l := logs.String(); !strings.Contains(l, "suppressed=") || !strings.Contains(l, "last_transport=grpc") {
		t.Fatalf("no summary line:\n%s", l)
	}
}
