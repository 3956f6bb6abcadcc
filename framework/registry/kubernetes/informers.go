package kubernetes

import (
	"context"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// caches are a Registry's three watches of its namespace — Pods,
// Services and EndpointSlices — shared by all its instancers and its
// Catalog, as one etcd client is shared by all of an etcd Registry's
// watches. Every change signals every subscriber; each recomputes its
// service from the caches.
type caches struct {
	factory informers.SharedInformerFactory
	pods    corelisters.PodNamespaceLister
	svcs    corelisters.ServiceNamespaceLister
	slices  discoverylisters.EndpointSliceNamespaceLister
	synced  []cache.InformerSynced

	cancel   context.CancelFunc
	stopOnce sync.Once

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func startInformers(cs kubernetes.Interface, ns string, logger log.Logger, watchErr func(error)) *caches {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := &caches{
		factory: f,
		pods:    f.Core().V1().Pods().Lister().Pods(ns),
		svcs:    f.Core().V1().Services().Lister().Services(ns),
		slices:  f.Discovery().V1().EndpointSlices().Lister().EndpointSlices(ns),
		subs:    map[chan struct{}]struct{}{},
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { inf.signal() },
		UpdateFunc: func(any, any) { inf.signal() },
		DeleteFunc: func(any) { inf.signal() },
	}
	for _, si := range []cache.SharedIndexInformer{
		f.Core().V1().Pods().Informer(),
		f.Core().V1().Services().Informer(),
		f.Discovery().V1().EndpointSlices().Informer(),
	} {
		_ = si.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			level.Warn(logger).Log("msg", "kubernetes watch broke off; the informer lists again", "err", err)
			watchErr(err)
		})
		_, _ = si.AddEventHandler(h)
		inf.synced = append(inf.synced, si.HasSynced)
	}
	ctx, cancel := context.WithCancel(context.Background())
	inf.cancel = cancel
	f.StartWithContext(ctx)
	return inf
}

// subscribe returns a channel that gets a (coalesced) signal after every
// change, and a function that ends the subscription.
func (inf *caches) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	inf.mu.Lock()
	inf.subs[ch] = struct{}{}
	inf.mu.Unlock()
	return ch, func() {
		inf.mu.Lock()
		delete(inf.subs, ch)
		inf.mu.Unlock()
	}
}

func (inf *caches) signal() {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	for ch := range inf.subs {
		select {
		case ch <- struct{}{}:
		default: // a signal is pending: the recompute will see this change too
		}
	}
}

// hasSynced reports whether every cache holds a full listing.
func (inf *caches) hasSynced() bool {
	for _, s := range inf.synced {
		if !s() {
			return false
		}
	}
	return true
}

// stop ends the watches and waits for the informers' goroutines.
// Idempotent.
func (inf *caches) stop() {
	inf.stopOnce.Do(func() {
		inf.cancel()
		inf.factory.Shutdown()
	})
}
