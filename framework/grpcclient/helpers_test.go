package grpcclient_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// echoServer is a grpcserver outside an App, for tests over a fixed list.
type echoServer struct {
	*grpcserver.Server
	ep   string
	echo *grpctest.Echo // counts the calls its handler ran
}

func startEcho(t testingT, id string, opts ...grpcserver.Option) *echoServer {
	t.Helper()
	var echo *grpctest.Echo
	s, err := grpcserver.New(func(g *grpc.Server) { echo = grpctest.Register(g, id) }, append([]grpcserver.Option{grpcserver.WithAddr("127.0.0.1:0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "echo", Nonce: id, Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve() //nolint:errcheck // ends with Close below
	t.Cleanup(func() { s.Close() })
	return &echoServer{Server: s, ep: s.Scheme() + "://" + addr.String(), echo: echo}
}

type testingT interface {
	Helper()
	Fatal(...any)
	Cleanup(func())
}

func (s *echoServer) instance(id string) string {
	return registry.Instance{ID: id, Name: "echo", Endpoints: []string{s.ep}}.String()
}

// firstPick picks the first target by ID that is not avoid and may take
// traffic, so a test knows which instance an attempt goes to.
type firstPick struct {
	mu *sync.Mutex
	ts *[]*balancer.Target
}

func newFirstPick() firstPick { return firstPick{&sync.Mutex{}, new([]*balancer.Target)} }

func (f firstPick) Update(ts []*balancer.Target) {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b *balancer.Target) int { return strings.Compare(a.Instance().ID, b.Instance().ID) })
	f.mu.Lock()
	*f.ts = s
	f.mu.Unlock()
}

func (f firstPick) Pick(_ context.Context, avoid *balancer.Target) (*balancer.Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range *f.ts {
		if t != avoid && t.Allow() {
			return t, nil
		}
	}
	if len(*f.ts) == 0 {
		return nil, balancer.ErrNoEndpoints
	}
	return (*f.ts)[0], nil
}

// unreachable is a registry that cannot be asked: every Instancer fails.
type unreachable struct{}

func (unreachable) Instancer(context.Context, string) (sd.Instancer, error) {
	return nil, errors.New("registry unreachable")
}

// ejectingPair starts echo instances a and b and a client over them that
// picks a first while it may take traffic (firstPick) and ejects an
// instance after 3 consecutive failures; the client closes with the test.
func ejectingPair(t *testing.T) (a, b *echoServer, c *grpcclient.Client) {
	t.Helper()
	a, b = startEcho(t, "a"), startEcho(t, "b")
	src := sd.FixedInstancer{a.instance("a"), b.instance("b")}
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(
		client.WithBalancer(newFirstPick()), client.WithOutlier(outlier.WithConsecutiveFailures(3))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return a, b, c
}
