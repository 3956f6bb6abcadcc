package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/warren-mesh/warren/framework/registry"
)

// errNotSynced is served with an empty set until the informers' first
// listing is complete.
var errNotSynced = errors.New("kubernetes: waiting for the first listing of Pods, Services and EndpointSlices")

// Instancer is a go-kit sd.Instancer of one Service's ready endpoints,
// kept current from the Registry's informers. Events carry
// registry.Instance.String values.
//
// One goroutine owned by the Instancer recomputes the set after every
// change of the namespace's Pods, Services or EndpointSlices (signals
// coalesce, so it reads the latest state) and publishes it only when the
// Service's EndpointSlices agree with its Pods (package doc, "Ordered
// delivery").
type Instancer struct {
	cache   *registry.Cache
	r       *Registry
	inf     *caches
	service string
	logger  log.Logger

	cancel    context.CancelFunc
	done      chan struct{}
	stopOnce  sync.Once
	first     chan struct{} // closed at the first publish
	firstOnce sync.Once

	mu            sync.Mutex
	publishedSkip map[string]string // skipped as of the set last published (Skipped)

	// Owned by the run goroutine.
	skipped   map[string]string // endpoint → why it is not served, as last logged; replaced, never changed
	heldSince time.Time         // zero while slices and Pods agree
	gaveUp    bool              // the hold ran out: serving the slices as they are
}

var _ sd.Instancer = (*Instancer)(nil)

func newInstancer(r *Registry, inf *caches, service string) *Instancer {
	ctx, cancel := context.WithCancel(context.Background())
	in := &Instancer{
		cache:   registry.NewCache(),
		r:       r,
		inf:     inf,
		service: service,
		logger:  log.With(r.cfg.logger, "service", service),
		cancel:  cancel,
		done:    make(chan struct{}),
		first:   make(chan struct{}),
		skipped: map[string]string{},
	}
	sig, unsubscribe := inf.subscribe()
	go func() {
		defer close(in.done)
		defer unsubscribe()
		in.run(ctx, sig)
	}()
	return in
}

// start waits, bounded by ctx and the initial wait, for the first set.
func (in *Instancer) start(ctx context.Context) {
	t := time.NewTimer(in.r.cfg.initialWait)
	defer t.Stop()
	select {
	case <-in.first:
	case <-t.C:
	case <-ctx.Done():
	case <-in.done:
	}
}

// Register implements sd.Instancer.
func (in *Instancer) Register(ch chan<- sd.Event) { in.cache.Register(ch) }

// Deregister implements sd.Instancer.
func (in *Instancer) Deregister(ch chan<- sd.Event) { in.cache.Deregister(ch) }

// RegisterDelta implements registry.DeltaInstancer.
func (in *Instancer) RegisterDelta(ch chan<- registry.Delta) { in.cache.RegisterDelta(ch) }

// DeregisterDelta implements registry.DeltaInstancer.
func (in *Instancer) DeregisterDelta(ch chan<- registry.Delta) { in.cache.DeregisterDelta(ch) }

// State returns the current event.
func (in *Instancer) State() sd.Event { return in.cache.State() }

// Skipped returns the ready endpoints left out of the set last published
// because they are not usable instances (an annotation that cannot be
// read): the Pod's name (else slice/address) → why. `warren ls` and
// `warren watch` print them, so an endpoint that is Ready in kubectl but
// missing from discovery says why there, not only in callers' logs
// (report j56a F5). It is set before the set's event is sent, so a
// subscriber reading it on an event reads at least that set's.
func (in *Instancer) Skipped() map[string]string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return maps.Clone(in.publishedSkip)
}

// Stop ends the Instancer's goroutine; the informers are the Registry's
// and keep running. Subscribers keep the last state. Idempotent.
func (in *Instancer) Stop() {
	in.stopOnce.Do(func() {
		in.cancel()
		// A subscriber may be calling Stop from its handler while run
		// waits to send it a change: end that send, or done never comes.
		in.cache.Stop()
		<-in.done
		in.r.forget(in)
	})
}

func (in *Instancer) run(ctx context.Context, sig <-chan struct{}) {
	if !in.waitSynced(ctx) {
		return
	}
	var (
		hold  = time.NewTimer(time.Hour)
		holdC <-chan time.Time
	)
	hold.Stop()
	defer hold.Stop()
	for {
		insts, agree := in.compute()
		switch {
		case agree:
			in.heldSince, in.gaveUp, holdC = time.Time{}, false, nil
			in.publish(insts)
		case in.heldSince.IsZero():
			// Slices and Pods disagree: the controller has not caught up
			// with the Pods yet, or we see half of a multi-slice write.
			// Keep the last set until they agree.
			in.heldSince = time.Now()
			hold.Reset(in.r.cfg.maxHold)
			holdC = hold.C
		case time.Since(in.heldSince) >= in.r.cfg.maxHold:
			if !in.gaveUp {
				level.Warn(in.logger).Log("msg", "EndpointSlices keep disagreeing with their Pods; serving the slices as they are", "held", time.Since(in.heldSince).Round(time.Millisecond))
				in.gaveUp = true
			}
			in.publish(insts)
		case holdC == nil:
			// Still within the hold (the timer cannot fire early, but be
			// sure a wake-up is armed).
			hold.Reset(in.r.cfg.maxHold - time.Since(in.heldSince))
			holdC = hold.C
		}
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-holdC:
			holdC = nil
		}
	}
}

// waitSynced waits for the informers' first full listing, saying why the
// set is empty if that takes longer than the initial wait. It reports
// false when ctx ended first.
func (in *Instancer) waitSynced(ctx context.Context) bool {
	notSynced := time.NewTimer(in.r.cfg.initialWait)
	defer notSynced.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	var said string // the reason last published, once the initial wait is over
	for !in.inf.hasSynced() {
		select {
		case <-ctx.Done():
			return false
		case <-notSynced.C:
			err := in.r.whyNotSynced(in.inf)
			said = err.Error()
			in.cache.Update(sd.Event{Err: err})
		case <-poll.C:
			// A list failing differently after the initial wait:
			// publish the new reason.
			if said != "" {
				if err := in.inf.notSynced(in.r.namespace); err != errNotSynced && err.Error() != said {
					said = err.Error()
					in.cache.Update(sd.Event{Err: err})
				}
			}
		}
	}
	return true
}

// compute reads the service's EndpointSlices (and the Pods they point at,
// for annotations) and returns the instance strings of its ready
// endpoints, and whether the slices agree with the Pods.
func (in *Instancer) compute() ([]string, bool) {
	var svc *corev1.Service
	if s, err := in.inf.svcs.Get(in.service); err == nil {
		svc = s
	} else if !apierrors.IsNotFound(err) {
		level.Warn(in.logger).Log("msg", "cannot read the Service from the cache", "err", err)
	}
	sls, err := in.inf.slices.List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: in.service}))
	if err != nil {
		level.Warn(in.logger).Log("msg", "cannot list EndpointSlices from the cache", "err", err)
	}
	// IPv4 slices before IPv6 ones, by name: a dual-stack Pod is served at
	// the same address every time.
	slices.SortFunc(sls, func(a, b *discoveryv1.EndpointSlice) int {
		return strings.Compare(string(a.AddressType)+"/"+a.Name, string(b.AddressType)+"/"+b.Name)
	})
	listed := map[string]listing{} // Pod name → what the slices say of it
	seen := map[string]bool{}      // instance IDs published
	skipped := map[string]string{}
	var insts []string
	for _, sl := range sls {
		if sl.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, ep := range sl.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			var pod *corev1.Pod
			if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" {
				l := listed[ref.Name]
				l.ready = l.ready || ready
				if ready {
					l.uid = string(ref.UID)
				}
				listed[ref.Name] = l
				if p, err := in.inf.pods.Get(ref.Name); err == nil && p.UID == ref.UID {
					pod = p
				}
			}
			if !ready {
				continue
			}
			inst, err := endpointInstance(in.service, sl, ep, pod, in.r.cfg.schemes)
			if err != nil {
				skipped[endpointKey(sl, ep)] = err.Error()
				continue
			}
			if !seen[inst.ID] {
				seen[inst.ID] = true
				insts = append(insts, inst.String())
			}
		}
	}
	in.reportSkipped(skipped)
	return insts, in.agree(svc, listed)
}

// endpointKey names a skipped endpoint: its Pod, which is what an
// operator looks up with kubectl, else slice/address.
func endpointKey(sl *discoveryv1.EndpointSlice, ep discoveryv1.Endpoint) string {
	if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" && ref.Name != "" {
		return ref.Name
	}
	return sl.Name + "/" + strings.Join(ep.Addresses, ",")
}

// listing is what a service's EndpointSlices say of one Pod.
type listing struct {
	ready bool
	uid   string // of the Pod a ready endpoint points at
}

// agree reports whether the slices list exactly the Pods of svc that are
// ready now, as the EndpointSlice controller will once it has caught up.
// A Service without a selector has slices written by someone else (no
// Pods to compare with): they always agree.
func (in *Instancer) agree(svc *corev1.Service, listed map[string]listing) bool {
	if svc == nil || len(svc.Spec.Selector) == 0 {
		return true
	}
	pods, err := in.inf.pods.List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return true
	}
	ready := 0
	for _, p := range pods {
		if !inEndpoints(p) || !podReady(p, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		ready++
		if l := listed[p.Name]; !l.ready || l.uid != string(p.UID) {
			return false
		}
	}
	n := 0
	for _, l := range listed {
		if l.ready {
			n++
		}
	}
	return n == ready
}

// publish hands the set to the subscribers and the observer.
func (in *Instancer) publish(insts []string) {
	in.mu.Lock()
	in.publishedSkip = in.skipped
	in.mu.Unlock()
	in.cache.Update(sd.Event{Instances: insts})
	in.r.cfg.observer.Instances(in.service, len(insts))
	in.firstOnce.Do(func() { close(in.first) })
}

// reportSkipped counts the ready endpoints that are not served and logs
// them when the list changes.
func (in *Instancer) reportSkipped(skipped map[string]string) {
	in.r.cfg.observer.Skipped(in.service, len(skipped))
	if maps.Equal(skipped, in.skipped) {
		return
	}
	in.skipped = skipped
	if len(skipped) == 0 {
		return
	}
	keys := slices.Sorted(maps.Keys(skipped))
	var examples []string
	for _, k := range keys[:min(3, len(keys))] {
		examples = append(examples, fmt.Sprintf("%s: %s", k, skipped[k]))
	}
	level.Warn(in.logger).Log("msg", "skipped ready endpoints that are not usable instances", "skipped", len(keys), "examples", strings.Join(examples, "; "))
}
