package kubernetes

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-kit/log"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/warren-mesh/warren/framework/registry"
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
	// lastErr is the last failed list or watch (a 403 when the RBAC Role
	// is missing): why the caches are not synced, when they are not.
	lastErr error
	// outage logs failed lists and watches once, a reminder a minute,
	// and the first change after them: client-go retries every second or
	// so, for each of the three informers (report j47a: 37 lines in 4
	// minutes, and none when it was over).
	outage *registry.OutageLog
}

func startInformers(cs kubernetes.Interface, ns string, logger log.Logger, watchErr func(error)) *caches {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := &caches{
		factory: f,
		pods:    f.Core().V1().Pods().Lister().Pods(ns),
		svcs:    f.Core().V1().Services().Lister().Services(ns),
		slices:  f.Discovery().V1().EndpointSlices().Lister().EndpointSlices(ns),
		subs:    map[chan struct{}]struct{}{},
		outage:  registry.NewOutageLog(logger, "Kubernetes (list and watch of Pods, Services, EndpointSlices)"),
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
			inf.mu.Lock()
			inf.lastErr = err
			inf.outage.Failed(err)
			inf.mu.Unlock()
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
	inf.outage.Recovered() // a change arrived: the informers list and watch again
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

// notSynced says why the caches hold no full listing yet: the last list
// or watch failure, with what to grant when the apiserver refused it.
func (inf *caches) notSynced(ns string) error {
	inf.mu.Lock()
	err := inf.lastErr
	inf.mu.Unlock()
	return notSyncedBecause(err, ns)
}

// unauthorizedHint explains a 401: authentication failed, which no Role
// can fix (report j56a F4: it got the RBAC hint of a 403).
const unauthorizedHint = "the apiserver does not accept these credentials: the token is invalid or expired, " +
	"or belongs to another cluster; check the kubeconfig's user or the Pod's service-account token"

func notSyncedBecause(err error, ns string) error {
	switch {
	case err == nil:
		return errNotSynced
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: %w (%s)", errNotSynced, err, unauthorizedHint)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: %w (the ServiceAccount or kubeconfig user needs get, list and watch on pods, services and endpointslices in namespace %q)", errNotSynced, err, ns)
	}
	return fmt.Errorf("%w: %w", errNotSynced, err)
}

// stop ends the watches and waits for the informers' goroutines.
// Idempotent.
func (inf *caches) stop() {
	inf.stopOnce.Do(func() {
		inf.cancel()
		inf.factory.Shutdown()
	})
}
