package grpcclient_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

var etcdSrv *embedetcd.Server

func TestMain(m *testing.M) {
	s, err := embedetcd.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		os.Exit(1)
	}
	etcdSrv = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

func openEtcd(t *testing.T) registry.Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := etcd.New(ctx, etcd.WithEndpoints(etcdSrv.Endpoints()...), etcd.WithPrefix("grpcclient-"+strings.ReplaceAll(t.Name(), "/", "-")), etcd.WithTTL(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// startApp runs an App serving Echo over gRPC over its own registry
// connection (an App closes its registry when it exits).
func startApp(t *testing.T, svc, id string) *grpctest.App {
	t.Helper()
	return grpctest.StartApp(t, openEtcd(t), svc, id)
}

func say(c *grpcclient.Client, opts ...grpcclient.EndpointOption) func(ctx context.Context, in string) (string, error) {
	ep := grpcclient.NewEndpoint(c, grpctest.SayMethod,
		func(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil },
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{}, opts...)
	return func(ctx context.Context, in string) (string, error) {
		out, err := ep(ctx, in)
		if err != nil {
			return "", err
		}
		return out.(string), nil
	}
}

func newClient(t *testing.T, reg registry.Discovery, svc string, copts ...client.Option) *grpcclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := grpcclient.New(ctx, reg, svc, grpcclient.WithClientOptions(copts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitInstances(t *testing.T, c *grpcclient.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(c.Targets()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("client sees %d instances after 30s, want %d", len(c.Targets()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctx30(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Discovered through real etcd, every instance takes calls; a business
// error comes back as the service's sentinel (errors.Is, svcerr.KindOf,
// status.Code) after one attempt, and counts against no instance.
func TestClient_BalancesOverDiscoveryAndRebuildsErrors(t *testing.T) {
	reg := openEtcd(t)
	for _, id := range []string{"a", "b", "c"} {
		startApp(t, "echo", id)
	}
	c := newClient(t, reg, "echo")
	waitInstances(t, c, 3)
	call := say(c, grpcclient.Idempotent())
	seen := map[string]int{}
	for range 150 {
		id, err := call(ctx30(t), "id")
		if err != nil {
			t.Fatal(err)
		}
		seen[id]++
	}
	if len(seen) != 3 {
		t.Fatalf("calls reached %v, want all three instances", seen)
	}

	sentinel := svcerr.New(svcerr.NotFound, "user_not_found", "user not found")
	before := c.State()
	_, err := call(ctx30(t), "fail:not_found:user_not_found")
	if !errors.Is(err, sentinel) || svcerr.KindOf(err) != svcerr.NotFound || status.Code(err) != codes.NotFound {
		t.Fatalf("error %v: want errors.Is the sentinel, kind not_found, code NotFound", err)
	}
	var ge *grpcclient.Error
	if !errors.As(err, &ge) || ge.Instance == "" {
		t.Fatalf("error %#v is not a *grpcclient.Error naming the instance", err)
	}
	// By registry ID and address, as the ejection lines name it (report
	// j57b F3).
	if ge.ID == "" || !strings.HasPrefix(err.Error(), ge.ID+" ("+ge.Instance+"): NotFound") {
		t.Fatalf("error %q (ID %q) does not start with the instance's ID and address", err, ge.ID)
	}
	// Retries counts hedges too (a slow moment of a loaded machine may
	// hedge an idempotent call); the business error adds no other retry.
	if st := c.State(); st.Retries-st.Hedges != before.Retries-before.Hedges || st.Ejected != 0 {
		t.Fatalf("state after a business error %+v (before it %+v): want no retry, no ejection", st, before)
	}
}

// A call no instance answered — grpc-go's own UNAVAILABLE for a refused
// connection, whose text names the address — is client.ErrUnreachable,
// as over HTTP: a service that returns it tells its callers "service
// echo unreachable", never the peer's address, and not as the peer's own
// answer passed on.
func TestClient_NoInstanceAnsweredIsUnreachable(t *testing.T) {
	dead := startEcho(t, "dead")
	dead.Close()
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{dead.instance("dead")}, "echo", grpcclient.WithClientOptions(client.WithoutOutlier()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = say(c, grpcclient.Idempotent())(ctx30(t), "id")
	if !errors.Is(err, client.ErrUnreachable) || svcerr.KindOf(err) != svcerr.Unavailable {
		t.Fatalf("err = %v; want client.ErrUnreachable", err)
	}
	passed := fmt.Errorf("lookup: %w", err)
	if pub := svcerr.Public(passed); pub != "lookup: service echo unreachable" || svcerr.PassedOn(passed) {
		t.Fatalf("public text %q, passed on %v; want \"lookup: service echo unreachable\", this service's own", pub, svcerr.PassedOn(passed))
	}
	if st := grpctransport.Status(passed); st.Code() != codes.Unavailable || strings.Contains(st.Message(), "127.0.0.1") || grpctransport.PassedOn(st) {
		t.Fatalf("answered as %v (passed on %v); want UNAVAILABLE without the address", st, grpctransport.PassedOn(st))
	}
}

// A call that surely was not sent (the instance's port refuses) is retried
// on another instance even when the method is not idempotent.
func TestClient_RetriesUnsentCallsElsewhere(t *testing.T) {
	live := startEcho(t, "live")
	dead := startEcho(t, "dead")
	dead.Close()
	src := sd.FixedInstancer{live.instance("live"), dead.instance("dead")}
	var retried retriedCount
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(client.WithoutOutlier(), client.WithObserver(&retried)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := say(c) // not idempotent
	for i := range 40 {
		id, err := call(ctx30(t), "id")
		if err != nil || id != "live" {
			t.Fatalf("call %d = %q, %v; want every call answered by the live instance", i, id, err)
		}
	}
	// Counted by the observer: a refusal's retry takes no budget token,
	// so State().Retries (the budget's) does not see it.
	if retried.n.Load() == 0 {
		t.Fatal("no call was retried, so none went to the dead instance")
	}
}

// retriedCount counts the retries a client reports to its observer.
type retriedCount struct {
	client.NopObserver
	n atomic.Int64
}

func (r *retriedCount) Retried(string) { r.n.Add(1) }

// A hung instance: the per-attempt deadline ends the attempt and an
// idempotent call is retried on another instance; a non-idempotent one is
// not (the hung instance may have acted).
func TestClient_DeadlineIsPerAttempt(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	src := sd.FixedInstancer{a.instance("a"), b.instance("b")}
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(
		client.WithBalancer(newFirstPick()), client.WithoutOutlier(),
		client.WithRetry(retry.WithPerAttemptTimeout(300*time.Millisecond))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := say(c, grpcclient.Idempotent())(ctx30(t), "on:a:sleep:1m")
	if err != nil || got != "b" {
		t.Fatalf("idempotent call with instance a hung = %q, %v; want b's answer", got, err)
	}
	_, err = say(c)(ctx30(t), "on:a:sleep:1m")
	if !errors.Is(err, retry.ErrAttemptTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("non-idempotent call on the hung instance = %v; want the attempt timeout, not a retry", err)
	}
}

// An instance failing with INTERNAL is ejected; business errors and
// overloads would not be (TestClient_Balances… checks the former).
func TestClient_EjectsAFailingInstance(t *testing.T) {
	_, _, c := ejectingPair(t)
	call := say(c, grpcclient.Idempotent())
	for range 3 { // firstPick sends each to a until it is ejected
		_, _ = call(ctx30(t), "on:a:fail:internal:broken")
	}
	if st := c.State(); st.Ejected != 1 {
		t.Fatalf("state %+v: want instance a ejected", st)
	}
	for range 20 {
		if id, err := call(ctx30(t), "on:a:fail:internal:broken"); err != nil || id != "b" {
			t.Fatalf("with a ejected: %q, %v; want b", id, err)
		}
	}
}

// An overloaded instance (RESOURCE_EXHAUSTED, reason overloaded) is
// retried elsewhere at once, even for a non-idempotent call.
func TestClient_OverloadGoesElsewhere(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	src := sd.FixedInstancer{a.instance("a"), b.instance("b")}
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(client.WithBalancer(newFirstPick())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := say(c)(ctx30(t), "on:a:fail:unavailable:overloaded")
	if err != nil || got != "b" {
		t.Fatalf("call refused as overloaded by a = %q, %v; want b's answer", got, err)
	}
	if st := c.State(); st.Ejected != 0 {
		t.Fatalf("an overload ejected an instance: %+v", st)
	}
}

// With a snapshot, a client that starts while the registry cannot be
// reached calls the instances it saw last time, over gRPC.
func TestClient_SnapshotServesWhenTheRegistryIsDown(t *testing.T) {
	reg := openEtcd(t)
	startApp(t, "echo", "a")
	dir := t.TempDir()
	c := newClient(t, reg, "echo", client.WithSnapshot(dir))
	if _, err := say(c)(ctx30(t), "id"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "echo.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot written within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	down := newClient(t, unreachable{}, "echo", client.WithSnapshot(dir))
	if id, err := say(down)(ctx30(t), "id"); err != nil || id != "a" {
		t.Fatalf("call from the snapshot = %q, %v", id, err)
	}
}

// An instance publishing grpcs:// is called over TLS with the client's
// configuration (here client.WithTLS among the client options, as
// bootstrap passes it): with a certificate from the CA the mTLS server
// serves the call; without one the handshake refuses it.
func TestClient_MutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	srv, cli := ca.Issue("server"), ca.Issue("client")
	scfg, err := tlsconf.Server(srv.CertFile, srv.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	s := startEcho(t, "tls", grpcserver.WithTLS(scfg))
	src := sd.FixedInstancer{s.instance("tls")}
	withCert, err := tlsconf.Client(ca.CertFile, cli.CertFile, cli.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(client.WithTLS(withCert)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id, err := say(c)(ctx30(t), "id"); err != nil || id != "tls" {
		t.Fatalf("call over mTLS = %q, %v", id, err)
	}
	noCert, err := tlsconf.Client(ca.CertFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	bare, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithTLS(noCert),
		grpcclient.WithClientOptions(client.WithoutOutlier(), client.WithRetry(retry.WithMaxAttempts(1))))
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if _, err := say(bare)(ctx30(t), "id"); err == nil {
		t.Fatal("a client without a certificate was served")
	}
}

// A client with TLS calls only instances that publish grpcs://: a
// plaintext instance (mis-deployed, or a record anyone with registry
// write access put there) is skipped, so it cannot downgrade the mesh to
// cleartext. client.WithPlaintextPeers lets it in again.
func TestClient_WithTLSSkipsPlaintextInstances(t *testing.T) {
	ca := tlstest.NewCA(t)
	srv, cli := ca.Issue("server"), ca.Issue("client")
	scfg, err := tlsconf.Server(srv.CertFile, srv.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	secure, plain := startEcho(t, "tls", grpcserver.WithTLS(scfg)), startEcho(t, "plain")
	src := sd.FixedInstancer{secure.instance("tls"), plain.instance("plain")}
	ccfg, err := tlsconf.Client(ca.CertFile, cli.CertFile, cli.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	answered := func(opts ...client.Option) map[string]int {
		c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(append(opts, client.WithTLS(ccfg))...))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := map[string]int{}
		for range 20 {
			id, err := say(c)(ctx30(t), "id")
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			got[id]++
		}
		return got
	}
	if got := answered(); got["plain"] != 0 || got["tls"] != 20 {
		t.Fatalf("20 calls with TLS answered by %v; want all by the TLS instance", got)
	}
	if got := answered(client.WithPlaintextPeers(), client.WithBalancer(balancer.NewRoundRobin())); got["plain"] == 0 {
		t.Fatalf("with WithPlaintextPeers, 20 round-robin calls answered by %v; want the plaintext instance among them", got)
	}
}
