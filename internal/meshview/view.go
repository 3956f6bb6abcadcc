// Package meshview watches a mesh through its registry, read-only, and
// serves what it sees as a live web page: every service and instance with
// its record, readiness and traffic, what each instance's clients think of
// the instances they call (breakers, retries), and a timeline of discovery
// events. `make up` runs one beside the demo mesh; `warren page` runs one
// against any registry (docs/mesh-page.md).
//
// A View only reads: it opens instancers, lists services when the backend
// is a registry.Catalog, and GETs each instance's /readyz and published
// /metrics URL. It never registers, deregisters or writes.
package meshview

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/registry"
)

// View is the live model of a mesh. Start it with Run; read it with
// Snapshot and Subscribe.
type View struct {
	disc registry.Discovery
	cfg  config

	mu       sync.Mutex
	services map[string]*serviceState
	events   []Event
	catErr   string
	subs     map[chan struct{}]struct{}
	running  bool
}

type config struct {
	registryName string
	services     []string
	catalogEvery time.Duration
	probeEvery   time.Duration
	window       time.Duration
	maxEvents    int
	client       *http.Client
	logger       log.Logger
	now          func() time.Time
}

// Option configures a View.
type Option func(*config) error

// WithRegistryName names the backend on the page ("etcd", "consul").
func WithRegistryName(name string) Option {
	return func(c *config) error { c.registryName = name; return nil }
}

// WithServices watches these services, in addition to those a
// registry.Catalog lists. A backend that is no Catalog shows only these.
func WithServices(names ...string) Option {
	return func(c *config) error {
		for _, n := range names {
			if !registry.ValidName(n) {
				return fmt.Errorf("meshview: service %q: %w", n, registry.ErrInvalidInstance)
			}
		}
		c.services = append(c.services, names...)
		return nil
	}
}

// WithCatalogEvery sets how often the backend's service list is read
// (default 2 s); new services are watched from then on.
func WithCatalogEvery(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("meshview: catalog interval %s: must be positive", d)
		}
		c.catalogEvery = d
		return nil
	}
}

// WithProbeEvery sets how often each instance's /readyz and /metrics are
// read (default 2 s).
func WithProbeEvery(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("meshview: probe interval %s: must be positive", d)
		}
		c.probeEvery = d
		return nil
	}
}

// WithWindow sets the span request rates and latency quantiles are
// computed over (default 10 s).
func WithWindow(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("meshview: window %s: must be positive", d)
		}
		c.window = d
		return nil
	}
}

// ProbeTimeout bounds each probe of the default HTTP client.
const ProbeTimeout = 2 * time.Second

// WithHTTPClient sets the client of the probes (default: ProbeTimeout,
// net/http's default transport).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("meshview: WithHTTPClient(nil)")
		}
		c.client = hc
		return nil
	}
}

// WithLogger logs watch and catalog failures (default: discard).
func WithLogger(l log.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("meshview: WithLogger(nil)")
		}
		c.logger = l
		return nil
	}
}

// New returns a View of the mesh d shows; Run starts it.
func New(d registry.Discovery, opts ...Option) (*View, error) {
	if d == nil {
		return nil, errors.New("meshview: nil Discovery")
	}
	cfg := config{
		catalogEvery: 2 * time.Second,
		probeEvery:   2 * time.Second,
		window:       10 * time.Second,
		maxEvents:    200,
		client:       &http.Client{Timeout: ProbeTimeout},
		logger:       log.NewNopLogger(),
		now:          time.Now,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	// Never follow a redirect: an instance's answer must not send the page
	// (with the operator's client certificate) anywhere else.
	hc := *cfg.client
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.client = &hc
	if _, ok := d.(registry.Catalog); !ok && len(cfg.services) == 0 {
		return nil, errors.New("meshview: the registry cannot list its services; name them (WithServices)")
	}
	return &View{disc: d, cfg: cfg, services: map[string]*serviceState{}, subs: map[chan struct{}]struct{}{}}, nil
}

// Run watches the mesh until ctx ends, then stops every watch and probe
// it started and returns nil. A View runs once.
func (v *View) Run(ctx context.Context) error {
	v.mu.Lock()
	if v.running {
		v.mu.Unlock()
		return errors.New("meshview: Run called twice")
	}
	v.running = true
	v.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer v.stopAll()
	for _, s := range v.cfg.services {
		v.watch(ctx, &wg, s)
	}
	cat, ok := v.disc.(registry.Catalog)
	if !ok {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(v.cfg.catalogEvery)
	defer t.Stop()
	for {
		names, err := cat.Services(ctx)
		if ctx.Err() != nil {
			return nil
		}
		v.setCatalogErr(err)
		for _, s := range names {
			v.watch(ctx, &wg, s)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (v *View) setCatalogErr(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
		level.Warn(v.cfg.logger).Log("msg", "cannot list services", "err", err)
	}
	v.mu.Lock()
	changed := v.catErr != msg
	v.catErr = msg
	v.mu.Unlock()
	if changed {
		v.notify()
	}
}

// watch starts watching service unless it is watched already.
func (v *View) watch(ctx context.Context, wg *sync.WaitGroup, service string) {
	v.mu.Lock()
	if _, ok := v.services[service]; ok {
		v.mu.Unlock()
		return
	}
	s := newServiceState(service)
	v.services[service] = s
	v.mu.Unlock()
	wg.Add(1)
	go func() { // owned by Run: ends with ctx
		defer wg.Done()
		v.runService(ctx, s)
	}()
	v.notify()
}

// stopAll ends every instance's probe; Run's WaitGroup then waits for them.
func (v *View) stopAll() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.services {
		for _, in := range s.instances {
			in.stop()
		}
	}
}

// Subscribe returns a channel that receives a value (coalesced: at most
// one waits) whenever the view changes, and a func that unsubscribes.
func (v *View) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	v.mu.Lock()
	v.subs[ch] = struct{}{}
	v.mu.Unlock()
	return ch, func() {
		v.mu.Lock()
		delete(v.subs, ch)
		v.mu.Unlock()
	}
}

func (v *View) notify() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for ch := range v.subs {
		select {
		case ch <- struct{}{}:
		default: // one pending is enough: the reader takes the latest state
		}
	}
}

// addEvent puts e in the timeline by its time, keeping the newest
// maxEvents: a departure is added once settled, up to a probe timeout
// after the events that followed it.
func (v *View) addEvent(e Event) {
	v.mu.Lock()
	i := len(v.events)
	for i > 0 && v.events[i-1].Time.After(e.Time) {
		i--
	}
	v.events = slices.Insert(v.events, i, e)
	if over := len(v.events) - v.cfg.maxEvents; over > 0 {
		v.events = slices.Delete(v.events, 0, over)
	}
	v.mu.Unlock()
	v.notify()
}
