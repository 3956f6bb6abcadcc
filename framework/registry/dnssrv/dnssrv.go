// Package dnssrv discovers instances from DNS SRV records: a Kubernetes
// headless Service's _port._tcp.service.namespace.svc.cluster.local, or
// any other SRV name. An Instancer resolves the name, publishes the targets
// of the lowest priority that has any (RFC 2782: higher priorities are
// fallbacks), with their SRV weights as instance weights, and resolves
// again when the answer's TTL runs out (clamped by WithTTLBounds). A name
// with no SRV records (NXDOMAIN, as CoreDNS answers for a headless Service
// without ready endpoints) is an empty set; a server that does not answer
// is an error event carrying the last set.
//
// DNS carries addresses, ports, priorities and weights only: no zone,
// version, tags or metadata, and no readiness beyond what the DNS server
// publishes (CoreDNS lists only ready endpoints of a headless Service).
// docs/kubernetes.md compares it with the EndpointSlice instancer.
package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/miekg/dns"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// Defaults of the options.
const (
	DefaultMinTTL  = time.Second
	DefaultMaxTTL  = 30 * time.Second
	DefaultTimeout = 2 * time.Second
)

// ErrNoAddress is the error of an event when SRV records exist but none
// of their targets has an address.
var ErrNoAddress = errors.New("dnssrv: no SRV target has an address")

// Option configures an Instancer or a Discovery.
type Option func(*config)

type config struct {
	servers        []string
	service        string
	scheme         string
	minTTL, maxTTL time.Duration
	timeout        time.Duration
	logger         log.Logger
}

// WithServer sets one DNS server, host:port: WithServers(addr).
func WithServer(addr string) Option { return WithServers(addr) }

// WithServers sets the DNS servers, host:port each, asked in this order.
// A question one does not answer (no connection, a timeout, a broken
// answer) or answers SERVFAIL or REFUSED goes to the next, and the server
// that answered is asked first from then on, so a server that is down
// costs one timeout, not one per question. An NXDOMAIN or an empty
// answer is an answer. Default: every nameserver of /etc/resolv.conf, as
// the system's resolver asks them.
func WithServers(addrs ...string) Option {
	return func(c *config) { c.servers = slices.Clone(addrs) }
}

// WithService sets the Name of the published instances. Default: the
// label after _port._proto in the SRV name (the Service of a Kubernetes
// name).
func WithService(name string) Option { return func(c *config) { c.service = name } }

// WithScheme sets the endpoint scheme. Default: the SRV name's first label
// without its underscore when it is http, https, grpc or grpcs (a
// Kubernetes port name), else http.
func WithScheme(s string) Option { return func(c *config) { c.scheme = s } }

// WithTTLBounds clamps how long an answer is kept before resolving again:
// a TTL of 0 (dnsmasq's default for local records) still waits min, a day
// long TTL still re-resolves after max. Defaults 1 s and 30 s.
func WithTTLBounds(min, max time.Duration) Option {
	return func(c *config) { c.minTTL, c.maxTTL = min, max }
}

// WithTimeout bounds each query. Default 2 s.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithLogger logs failed resolutions. Default: none.
func WithLogger(l log.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

func newConfig(opts []Option) (config, error) {
	c := config{minTTL: DefaultMinTTL, maxTTL: DefaultMaxTTL, timeout: DefaultTimeout, logger: log.NewNopLogger()}
	for _, o := range opts {
		o(&c)
	}
	if len(c.servers) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cc.Servers) == 0 {
			return c, fmt.Errorf("dnssrv: no DNS server given and none in /etc/resolv.conf: %v", err)
		}
		for _, s := range cc.Servers {
			c.servers = append(c.servers, net.JoinHostPort(s, cc.Port))
		}
	}
	for _, s := range c.servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return c, fmt.Errorf("dnssrv: server %q: want host:port: %w", s, err)
		}
	}
	switch {
	case c.minTTL <= 0 || c.maxTTL < c.minTTL:
		return c, fmt.Errorf("dnssrv: TTL bounds [%s, %s]: want 0 < min <= max", c.minTTL, c.maxTTL)
	case c.timeout <= 0:
		return c, fmt.Errorf("dnssrv: timeout %s must be positive", c.timeout)
	}
	return c, nil
}

// Instancer is a go-kit sd.Instancer over one SRV name. Its goroutine
// resolves the name, publishes the set to the embedded Cache (sends are
// synchronous: a subscriber reads until it Deregisters) and sleeps for the
// answer's TTL. A failed resolution publishes an event with the error and
// the last good set and is retried with backoff up to the last answer's
// TTL (clamped; up to the maximum before any answer).
type Instancer struct {
	*registry.Cache

	name string
	cfg  config
	dc   *dns.Client

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	// known holds each target's last good addresses, for a target whose
	// lookup fails (owned by the loop's goroutine).
	known   map[string][]string
	failing map[string]bool // targets whose last lookup failed: logged once per run
	// asking is the index of the server asked first: the last one that
	// answered (owned by the loop's goroutine).
	asking int
}

var _ sd.Instancer = (*Instancer)(nil)

// NewInstancer starts resolving the SRV name. It returns at once; the
// first event comes with the first answer.
func NewInstancer(name string, opts ...Option) (*Instancer, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	name = dns.Fqdn(name)
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("dnssrv: %q is not a domain name", name)
	}
	labels := dns.SplitDomainName(name)
	if cfg.service == "" && len(labels) >= 3 && strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_") {
		cfg.service = labels[2]
	}
	if !registry.ValidName(cfg.service) {
		return nil, fmt.Errorf("dnssrv: %w: service name %q (set WithService)", registry.ErrInvalidInstance, cfg.service)
	}
	if cfg.scheme == "" {
		cfg.scheme = "http"
		if s := strings.TrimPrefix(labels[0], "_"); slices.Contains([]string{"http", "https", "grpc", "grpcs"}, s) {
			cfg.scheme = s
		}
	}
	if _, _, _, err := registry.ParseEndpoint(cfg.scheme + "://192.0.2.1:1"); err != nil {
		// Every instance would fail validation and the set stay empty,
		// without an error (report j51a).
		return nil, fmt.Errorf("dnssrv: scheme %q (WithScheme): %w", cfg.scheme, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &Instancer{
		Cache: registry.NewCache(), name: name, cfg: cfg,
		dc:     &dns.Client{Net: "udp", Timeout: cfg.timeout},
		cancel: cancel, done: make(chan struct{}),
	}
	go in.loop(ctx)
	return in, nil
}

// Stop ends the goroutine and waits for it; a query in flight ends at
// once, not at its timeout. It is idempotent.
func (in *Instancer) Stop() {
	in.once.Do(func() {
		in.cancel()
		<-in.done
	})
}

func (in *Instancer) loop(ctx context.Context) {
	defer close(in.done)
	b := backoff.New(100*time.Millisecond, in.cfg.maxTTL)
	var last []string
	outage := registry.NewOutageLog(log.With(in.cfg.logger, "name", in.name), "DNS")
	for {
		set, ttl, err := in.resolve(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := in.clamp(ttl)
		if err != nil {
			outage.Failed(err, "instances", len(last))
			in.Cache.Update(sd.Event{Instances: last, Err: err})
			wait = b.Next()
		} else {
			// Retries after a failure come at least as often as this
			// answer said its records could change: once the server is
			// back, the set is at most one TTL stale, not maxTTL.
			b = backoff.New(100*time.Millisecond, max(wait, 100*time.Millisecond))
			if len(set) == 0 && len(last) > 0 {
				// Said once: an empty set is no error (a headless
				// Service without ready Pods), but calls fail "no
				// endpoints" meanwhile, and a misspelt name looks the same
				// (report j51a: 324 failed calls, no line).
				level.Warn(in.cfg.logger).Log("msg", "DNS lists no SRV target for the name; publishing an empty set", "name", in.name, "had", len(last))
			}
			last = set
			outage.Recovered("instances", len(set))
			in.Cache.Update(sd.Event{Instances: set})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (in *Instancer) clamp(ttl time.Duration) time.Duration {
	return min(max(ttl, in.cfg.minTTL), in.cfg.maxTTL)
}

// resolve asks for the SRV records and the addresses of their targets,
// and returns the instances of the lowest priority with any, and the
// smallest TTL seen.
func (in *Instancer) resolve(ctx context.Context) ([]string, time.Duration, error) {
	resp, err := in.query(ctx, in.name, dns.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	ttl := time.Duration(-1)
	seeTTL := func(rr dns.RR) {
		if d := time.Duration(rr.Header().Ttl) * time.Second; ttl < 0 || d < ttl {
			ttl = d
		}
	}
	addrs := map[string][]string{}
	for _, rr := range resp.Extra {
		// Glue's TTL counts too: an address that may change in 1 s was
		// read again only at the SRV's TTL (report j51a).
		switch a := rr.(type) {
		case *dns.A:
			addrs[a.Hdr.Name] = appendUsable(addrs[a.Hdr.Name], a.A)
			seeTTL(a)
		case *dns.AAAA:
			addrs[a.Hdr.Name] = appendUsable(addrs[a.Hdr.Name], a.AAAA)
			seeTTL(a)
		}
	}
	var srvs []*dns.SRV
	for _, rr := range resp.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			seeTTL(s)
			if s.Target == "." {
				continue // RFC 2782: the service is decidedly not available here
			}
			srvs = append(srvs, s)
		}
	}
	if len(srvs) == 0 {
		// NXDOMAIN or no data: DNS says there are none (CoreDNS answers so
		// for a headless Service without ready endpoints). Ask again after
		// the negative TTL of the SOA, if the server sent one. Every target
		// is removed, so forgotten: one listed again whose lookup fails
		// would otherwise come back with the address of a Pod from before.
		in.known, in.failing = nil, nil
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				seeTTL(soa)
				if d := time.Duration(soa.Minttl) * time.Second; d < ttl {
					ttl = d
				}
			}
		}
		return nil, ttl, nil
	}
	// Targets without glue: ask for their addresses. A target whose
	// lookup fails keeps its last good addresses, or is left out: one
	// target in another zone the server refuses, or an AAAA SERVFAIL
	// beside a good A, failed the whole name — a client starting then
	// had no instance at all, one running never saw removals (report
	// j51a). The name fails only when no target has an address.
	var lookupErrs []error
	known, failing := map[string][]string{}, map[string]bool{}
	for _, s := range srvs {
		if len(addrs[s.Target]) > 0 {
			known[s.Target] = addrs[s.Target]
			continue
		}
		if _, asked := known[s.Target]; asked {
			continue // a target listed twice (another port) is asked once
		}
		var failed error
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r, err := in.query(ctx, s.Target, qt)
			if err != nil {
				failed = err
				continue
			}
			for _, rr := range r.Answer {
				switch a := rr.(type) {
				case *dns.A:
					addrs[s.Target] = appendUsable(addrs[s.Target], a.A)
					seeTTL(a)
				case *dns.AAAA:
					addrs[s.Target] = appendUsable(addrs[s.Target], a.AAAA)
					seeTTL(a)
				}
			}
		}
		if failed != nil && len(addrs[s.Target]) == 0 {
			lookupErrs = append(lookupErrs, failed)
			failing[s.Target] = true
			msg := "SRV target lookup failed; left out"
			if prev := in.known[s.Target]; len(prev) > 0 {
				addrs[s.Target], msg = prev, "SRV target lookup failed; keeping its last addresses"
			}
			if !in.failing[s.Target] {
				level.Warn(in.cfg.logger).Log("msg", msg, "name", in.name, "target", s.Target, "err", failed)
			}
		}
		known[s.Target] = addrs[s.Target]
	}
	if ctx.Err() != nil {
		return nil, 0, ctx.Err()
	}
	in.known, in.failing = known, failing // only this answer's targets: removed ones are forgotten
	// The lowest priority whose targets have an address.
	slices.SortFunc(srvs, func(a, b *dns.SRV) int { return int(a.Priority) - int(b.Priority) })
	var group []*dns.SRV
	for _, s := range srvs {
		if len(addrs[s.Target]) == 0 {
			continue
		}
		if len(group) > 0 && s.Priority != group[0].Priority {
			break
		}
		group = append(group, s)
	}
	if len(group) == 0 {
		return nil, ttl, fmt.Errorf("%w: %s%s", ErrNoAddress, in.name, joinedCause(lookupErrs))
	}
	anyWeight := slices.ContainsFunc(group, func(s *dns.SRV) bool { return s.Weight > 0 })
	var out []string
	seenID := map[string]bool{}
	for _, s := range group {
		ips := addrs[s.Target]
		slices.Sort(ips)
		w := int(s.Weight)
		if anyWeight && w == 0 {
			w = 1 // RFC 2782: weight 0 gets a very small share, not none
		}
		target := strings.TrimSuffix(s.Target, ".")
		inst := registry.Instance{
			ID:        target + ":" + strconv.Itoa(int(s.Port)),
			Name:      in.cfg.service,
			Endpoints: []string{registry.EndpointURL(in.cfg.scheme, ips[0], int(s.Port))},
			Weight:    w,
		}
		if err := inst.Validate(); err != nil || seenID[inst.ID] {
			continue // a record listed twice would double the target's share
		}
		seenID[inst.ID] = true
		out = append(out, inst.String())
	}
	return out, ttl, nil
}

// joinedCause renders the targets' lookup errors after ErrNoAddress.
func joinedCause(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	return " (" + errors.Join(errs...).Error() + ")"
}

// appendUsable appends ip unless it is unspecified (0.0.0.0, ::), which
// no caller can dial.
func appendUsable(ips []string, ip net.IP) []string {
	if ip.IsUnspecified() {
		return ips
	}
	return append(ips, ip.String())
}

// query sends one question to the servers in turn (WithServers), from
// the one that answered last, until one answers.
func (in *Instancer) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(4096, false)
	servers := in.cfg.servers
	var errs []error
	for k := range servers {
		i := (in.asking + k) % len(servers)
		resp, err := in.ask(ctx, servers[i], m)
		if err == nil {
			if i != in.asking {
				level.Warn(in.cfg.logger).Log("msg", "DNS server did not answer; asking the next one first from now on",
					"name", in.name, "server", servers[in.asking], "next", servers[i], "err", errors.Join(errs...))
				in.asking = i
			}
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dnssrv: %s %s: %w", dns.TypeToString[qtype], name, err)
		}
		if len(servers) > 1 {
			err = fmt.Errorf("%s: %w", servers[i], err)
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("dnssrv: %s %s: %w", dns.TypeToString[qtype], name, errors.Join(errs...))
}

// errRcode is an answer that is no answer: SERVFAIL, REFUSED and the
// like (NXDOMAIN is one: the name has no records).
type errRcode int

func (e errRcode) Error() string { return dns.RcodeToString[int(e)] }

// ask sends m to server, over TCP again when the UDP answer was
// truncated.
func (in *Instancer) ask(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error) {
	resp, err := in.exchange(ctx, in.dc, server, m)
	if err == nil && resp.Truncated {
		resp, err = in.exchange(ctx, &dns.Client{Net: "tcp", Timeout: in.cfg.timeout}, server, m)
	}
	if err != nil {
		return nil, err
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, errRcode(resp.Rcode)
	}
	return resp, nil
}

// exchange sends m to the server and reads the answer; it ends when ctx
// does. miekg/dns's exchange heeds only deadlines, so Stop waited for a
// silent server's answer until the query's timeout (WithTimeout): closing
// the connection ends the read at once.
func (in *Instancer) exchange(ctx context.Context, c *dns.Client, server string, m *dns.Msg) (*dns.Msg, error) {
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	// Each question has a socket of its own, whose port the error would
	// name ("read udp 127.0.0.1:41236->…"): every retry of an outage would
	// then be a new error, and the Cache publishes an event for each.
	var op *net.OpError
	if errors.As(err, &op) {
		op.Source = nil
	}
	return resp, err
}

// Discovery is a registry.Discovery over SRV names made from a template:
// Instancer(ctx, "user") resolves fmt.Sprintf(template, "user").
type Discovery struct {
	template string
	opts     []Option
}

// NewDiscovery returns a Discovery; template has one %s for the service,
// e.g. "_http._tcp.%s.default.svc.cluster.local".
func NewDiscovery(template string, opts ...Option) (*Discovery, error) {
	if strings.Count(template, "%s") != 1 {
		return nil, fmt.Errorf("dnssrv: template %q: want exactly one %%s for the service", template)
	}
	if _, err := newConfig(opts); err != nil {
		return nil, err
	}
	return &Discovery{template: template, opts: opts}, nil
}

// Instancer implements registry.Discovery.
func (d *Discovery) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !registry.ValidName(service) {
		return nil, fmt.Errorf("dnssrv: %w: service name %q", registry.ErrInvalidInstance, service)
	}
	in, err := NewInstancer(fmt.Sprintf(d.template, service), append(slices.Clone(d.opts), WithService(service))...)
	if err != nil {
		return nil, err
	}
	return in, nil
}
