// Package grpcresolver lets a plain grpc-go client find Warren services:
// a resolver.Builder for targets "warren:///<service>" backed by any
// registry's Instancer (etcd, Consul, memory, a snapshot), so grpc-go's own
// load balancing (round_robin, or a policy of your own) follows discovery.
//
//	b := grpcresolver.NewBuilder(reg)
//	cc, err := grpc.NewClient("warren:///user",
//		grpc.WithResolvers(b),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//
// Each instance's grpc:// or grpcs:// endpoint becomes one resolver
// endpoint; its registry record (zone, weight, version, metadata) rides in
// the endpoint's attributes and the address's balancer attributes for a
// custom balancer to read with InstanceOf. The channel hears only of
// changes to that view: an event that leaves it as it was (an HTTP-only
// instance came or went) is not passed on. Nothing is registered globally: pass the builder with
// grpc.WithResolvers (or resolver.Register it yourself).
//
// A Builder remembers each service's last good set: a resolver that
// cannot read the registry before its first set (a channel back from
// idle during an outage) hands the channel that set, not the error.
//
// This is the plain-grpc-go path. Warren's own client (package grpcclient)
// adds retries with a budget, outlier ejection and P2C on top of the same
// discovery; see docs/grpc.md.
package grpcresolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// Scheme is the target scheme: "warren:///<service>".
const Scheme = "warren"

// Builder builds resolvers over one registry.
type Builder struct {
	d       registry.Discovery
	open    time.Duration
	schemes []string

	// last is each service's last good set seen by any resolver of the
	// builder. A resolver that cannot read the registry before its first
	// set starts from it: grpc-go closes a channel's resolver when the
	// channel goes idle (30 minutes by default) and builds a new one on
	// its next call, and without it that call, in a registry outage,
	// failed although the instances were up (audit s2).
	mu   sync.Mutex
	last map[string][]string
}

// Option configures a Builder.
type Option func(*Builder) error

// WithOpenTimeout bounds each attempt to open the service's Instancer
// (default 10s); failed attempts are retried with backoff and reported to
// the channel meanwhile.
func WithOpenTimeout(d time.Duration) Option {
	return func(b *Builder) error {
		if d <= 0 {
			return fmt.Errorf("grpcresolver.WithOpenTimeout(%s): must be positive", d)
		}
		b.open = d
		return nil
	}
}

// WithSchemes sets which endpoint schemes of an instance are used, in
// order of preference (default "grpc", "grpcs"). A client dialling with
// TLS credentials would pass "grpcs".
func WithSchemes(schemes ...string) Option {
	return func(b *Builder) error {
		if len(schemes) == 0 {
			return errors.New("grpcresolver.WithSchemes(): no scheme")
		}
		b.schemes = schemes
		return nil
	}
}

// NewBuilder returns a builder of "warren:///<service>" resolvers over d.
func NewBuilder(d registry.Discovery, opts ...Option) (*Builder, error) {
	if d == nil {
		return nil, errors.New("grpcresolver: nil Discovery")
	}
	b := &Builder{d: d, open: 10 * time.Second, schemes: []string{"grpc", "grpcs"}, last: map[string][]string{}}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("grpcresolver: nil option")
		}
		if err := o(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Scheme implements resolver.Builder.
func (b *Builder) Scheme() string { return Scheme }

// Build implements resolver.Builder: it watches the service named by the
// target's path. It does not block: the Instancer is opened by the
// resolver's goroutine, so a registry that is slow to answer delays the
// first call, not NewClient.
func (b *Builder) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := strings.TrimPrefix(t.Endpoint(), "/")
	// An authority or a query would be ignored, silently: a target that
	// names a registry ("warren://etcd:2379/user") or a filter
	// ("?zone=eu") got every instance from the builder's registry.
	if t.URL.Host != "" || t.URL.RawQuery != "" || t.URL.ForceQuery {
		return nil, fmt.Errorf("grpcresolver: target %q: want warren:///<service>, with no authority or query (the builder's registry is used, unfiltered)", t.URL.String())
	}
	if !registry.ValidName(service) {
		return nil, fmt.Errorf("grpcresolver: target %q: %q is not a service name (want warren:///<service>)", t.URL.String(), service)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &warrenResolver{b: b, service: service, cc: cc, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx) // owned by r: Close cancels ctx and waits for it
	return r, nil
}

type warrenResolver struct {
	b       *Builder
	service string
	cc      resolver.ClientConn
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once

	// Owned by the goroutine that reads the Instancer's events: what the
	// channel was last told.
	sent []string // instance strings of the last state passed on, sorted
	told bool     // a state was passed on since the last reported error
	// live: the registry has handed a set (good, or the last good one
	// with an error); until then the builder's last set stands in.
	live bool
}

// ResolveNow implements resolver.Resolver. Discovery pushes every change,
// so there is nothing to poll.
func (r *warrenResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close implements resolver.Resolver: it stops the watch and waits for it.
func (r *warrenResolver) Close() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
}

func (r *warrenResolver) run(ctx context.Context) {
	defer close(r.done)
	src, err := r.openInstancer(ctx)
	if err != nil {
		return // ctx ended
	}
	defer src.Stop()
	// Read before registering: registries deliver the current set to a
	// new subscriber synchronously.
	events := make(chan sd.Event, 1)
	reading := make(chan struct{})
	go func() { // ends when events is closed below
		defer close(reading)
		for ev := range events {
			r.update(ev)
		}
	}()
	src.Register(events)
	<-ctx.Done()
	src.Deregister(events)
	close(events)
	<-reading
}

// openInstancer opens the service's Instancer, retrying with backoff and
// telling the channel why it cannot resolve yet, until it works or ctx
// ends.
func (r *warrenResolver) openInstancer(ctx context.Context) (sd.Instancer, error) {
	for n := 1; ; n++ {
		octx, cancel := context.WithTimeout(ctx, r.b.open)
		src, err := r.b.d.Instancer(octx, r.service)
		cancel()
		if err == nil {
			return src, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.update(sd.Event{Err: err}) // the builder's last set, if any, or the error
		t := time.NewTimer(backoff.Nth(100*time.Millisecond, 5*time.Second, n))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

func (r *warrenResolver) update(ev sd.Event) {
	switch {
	case ev.Err == nil:
		r.b.remember(r.service, ev.Instances)
		r.live = true
	case len(ev.Instances) > 0:
		r.live = true
	case !r.live:
		// The registry cannot be read yet: the service's last good set
		// stands, for as long as it cannot, as the set of a watch that
		// loses the registry does.
		ev.Instances = r.b.lastGood(r.service)
	}
	if ev.Err != nil && len(ev.Instances) == 0 {
		r.cc.ReportError(fmt.Errorf("warren resolver: discover %s: %w", r.service, ev.Err))
		r.told = false // the next set must reach the channel, even an unchanged one
		return
	}
	type served struct {
		s, hostport string
		inst        registry.Instance
	}
	var kept []served
	for _, s := range ev.Instances {
		inst, err := registry.ParseInstance(s)
		if err != nil {
			continue // the registry logs records it cannot read
		}
		ep, ok := inst.Endpoint(r.b.schemes...)
		if !ok {
			continue // serves no gRPC (an HTTP-only instance)
		}
		_, hostport, _ := strings.Cut(ep, "://")
		kept = append(kept, served{s: s, hostport: hostport, inst: inst})
	}
	// Registries send an event for every change of the service's set and
	// of its error, and most leave the gRPC view as it was (an HTTP-only
	// instance came or went, reads failed and the last good set stands).
	// The channel is told only of a new view: each UpdateState makes grpc-go
	// render the whole state for its trace and walk every endpoint through
	// the balancer.
	key := make([]string, len(kept))
	for i, k := range kept {
		key[i] = k.s // the string is the whole record: same string, same address and attributes
	}
	slices.Sort(key)
	if r.told && slices.Equal(key, r.sent) {
		return
	}
	var st resolver.State
	for _, k := range kept {
		attrs := attributes.New(instanceKey{}, instanceAttr{inst: k.inst, s: k.s})
		// BalancerAttributes, not Attributes: the record is for the
		// balancer. grpc-go compares a subchannel's addresses by their
		// Attributes (ignoring only BalancerAttributes), so a changed
		// record there (a new weight) handed to SubConn.UpdateAddresses
		// would tear down a ready connection to the same host:port.
		// In Endpoints the record rides on the endpoint alone, as grpc-go
		// itself moves it when it makes endpoints of addresses.
		//
		// ServerName: TLS verifies the instance's own host, as Warren's
		// clients do and docs/security.md has certificates name it; without
		// it grpc-go verifies the target's authority, the service name
		// ("user"), which no instance certificate carries (report j50c).
		// grpc.WithAuthority still wins; a tls.Config.ServerName does
		// not (grpc-go hands the handshake this name over it).
		name := serverName(k.hostport)
		st.Addresses = append(st.Addresses, resolver.Address{Addr: k.hostport, ServerName: name, BalancerAttributes: attrs})
		st.Endpoints = append(st.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: k.hostport, ServerName: name}}, Attributes: attrs})
	}
	r.sent, r.told = key, true
	// An empty set is passed on too: the balancer fails calls fast instead
	// of sending them to instances that have left.
	_ = r.cc.UpdateState(st) // ErrBadResolverState for an empty set: the next change corrects it
	if len(kept) == 0 {
		// Calls then fail with this, not the balancer's "no children to
		// pick from", which names neither the service nor why (report
		// j50c).
		r.cc.ReportError(fmt.Errorf("warren resolver: no instance of %s serves %s (%d listed)", r.service, strings.Join(r.b.schemes, " or "), len(ev.Instances)))
	}
}

// remember keeps instances as service's last good set (none: forgotten,
// the registry said there is no instance).
func (b *Builder) remember(service string, instances []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(instances) == 0 {
		delete(b.last, service)
		return
	}
	b.last[service] = slices.Clone(instances)
}

// lastGood returns service's last good set, if a resolver had one.
func (b *Builder) lastGood(service string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last[service] // never modified: remember replaces it
}

// serverName is the host of host:port ("10.0.0.5", "::1"), the name a
// TLS handshake verifies.
func serverName(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return host
}

type instanceKey struct{}

// String names the key in grpc-go's logs and traces (see instanceAttr).
func (instanceKey) String() string { return "warren.instance" }

// instanceAttr carries the record; attributes compare it by its instance
// string, so an unchanged instance keeps its subchannel across updates.
type instanceAttr struct {
	inst registry.Instance
	s    string
}

func (a instanceAttr) Equal(o any) bool {
	b, ok := o.(instanceAttr)
	return ok && a.s == b.s
}

// String is the instance string: grpc-go prints attributes in its logs
// and channelz traces, on every state update, and would otherwise format
// the whole struct.
func (a instanceAttr) String() string { return a.s }

// InstanceOf returns the registry record of a resolved address or
// endpoint's attributes (zone, weight, version, tags, metadata), for a
// custom balancer: InstanceOf(endpoint.Attributes) or
// InstanceOf(addr.BalancerAttributes).
func InstanceOf(a *attributes.Attributes) (registry.Instance, bool) {
	v, ok := a.Value(instanceKey{}).(instanceAttr)
	return v.inst, ok
}
