package kubernetes

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/warren-mesh/warren/framework/backoff"
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
	// failing holds the resources whose last list or watch failed: the
	// outage is over once none is left, not at the first change another
	// resource brings (a Role without pods said "readable again" at every
	// Service change, and warned again at the next refused list).
	failing  map[string]bool
	watchErr func(error)
	// outage logs failed lists and watches once, a reminder a minute,
	// and when every resource lists and watches again: client-go retries
	// every second or so, for each of the three informers (report j47a:
	// 37 lines in 4 minutes, and none when it was over).
	outage *registry.OutageLog
}

func startInformers(cs kubernetes.Interface, ns string, logger log.Logger, watchErr func(error)) *caches {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := &caches{
		factory:  f,
		subs:     map[chan struct{}]struct{}{},
		outage:   registry.NewOutageLog(logger, "Kubernetes (list and watch of Pods, Services, EndpointSlices)"),
		failing:  map[string]bool{},
		watchErr: watchErr,
	}
	pods := f.InformerFor(&corev1.Pod{}, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
		return newInformer(cs, &corev1.Pod{}, inf.hooks("pods"), cs.CoreV1().Pods(ns).List, cs.CoreV1().Pods(ns).Watch)
	})
	svcs := f.InformerFor(&corev1.Service{}, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
		return newInformer(cs, &corev1.Service{}, inf.hooks("services"), cs.CoreV1().Services(ns).List, cs.CoreV1().Services(ns).Watch)
	})
	slices := f.InformerFor(&discoveryv1.EndpointSlice{}, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
		return newInformer(cs, &discoveryv1.EndpointSlice{}, inf.hooks("endpointslices"), cs.DiscoveryV1().EndpointSlices(ns).List, cs.DiscoveryV1().EndpointSlices(ns).Watch)
	})
	inf.pods = corelisters.NewPodLister(pods.GetIndexer()).Pods(ns)
	inf.svcs = corelisters.NewServiceLister(svcs.GetIndexer()).Services(ns)
	inf.slices = discoverylisters.NewEndpointSliceLister(slices.GetIndexer()).EndpointSlices(ns)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { inf.signal() },
		UpdateFunc: func(any, any) { inf.signal() },
		DeleteFunc: func(any) { inf.signal() },
	}
	for res, si := range map[string]cache.SharedIndexInformer{"pods": pods, "services": svcs, "endpointslices": slices} {
		_ = si.SetWatchErrorHandler(func(_ *cache.Reflector, err error) { inf.failed(res, err) })
		_, _ = si.AddEventHandler(handler)
		inf.synced = append(inf.synced, si.HasSynced)
	}
	ctx, cancel := context.WithCancel(context.Background())
	inf.cancel = cancel
	f.StartWithContext(ctx)
	return inf
}

// Reconnecting to an apiserver that refuses connections (down, or
// restarting): tried again within reconnectMax (as Register's read
// check), and the wait starts afresh at every list or watch.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// newInformer is the informer of one resource of the namespace, as
// client-go's factory makes it, except that a list or watch the apiserver
// refuses to connect is retried here, within reconnectMax, and not by
// the reflector: its backoff grows through an outage to 30-60 s and is
// reset only after 2 minutes without a failure, so after an outage of a
// minute the caches stayed as they were for up to a minute more while
// the apiserver answered (audit k1: a Pod withdrawn 31 s after a 45 s
// outage was still served 31 s later).
func newInformer[L runtime.Object](cs kubernetes.Interface, obj runtime.Object, h connHooks,
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error),
) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return untilConnected(ctx, h, func(ctx context.Context) (runtime.Object, error) {
				l, err := list(ctx, o)
				if err != nil {
					return nil, err
				}
				return l, nil
			})
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return untilConnected(ctx, h, func(ctx context.Context) (watch.Interface, error) { return watchFn(ctx, o) })
		},
	}
	return cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, cs), obj,
		cache.SharedIndexInformerOptions{Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}})
}

// connHooks hear how one informer's lists and watches go.
type connHooks struct {
	failed func(error) // a list or watch refused a connection
	ok     func()      // a list or watch made
}

// hooks are res's connHooks.
func (inf *caches) hooks(res string) connHooks {
	return connHooks{failed: func(err error) { inf.failed(res, err) }, ok: func() { inf.ok(res) }}
}

// failed notes a failed list or watch of res.
func (inf *caches) failed(res string, err error) {
	inf.mu.Lock()
	inf.lastErr = err
	inf.failing[res] = true
	inf.outage.Failed(err)
	inf.mu.Unlock()
	inf.watchErr(err)
}

// ok notes a list or watch of res made: the outage is over when no
// resource is failing. A success, not a change, says so: a watch that
// resumes where it broke off brings no event when nothing changed.
func (inf *caches) ok(res string) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	delete(inf.failing, res)
	if len(inf.failing) == 0 {
		inf.outage.Recovered()
	}
}

// untilConnected calls call until the apiserver takes the connection, or
// ctx ends (the informer stops). Any other outcome is the caller's.
func untilConnected[T any](ctx context.Context, h connHooks, call func(context.Context) (T, error)) (T, error) {
	bo := backoff.New(reconnectMin, reconnectMax)
	for {
		v, err := call(ctx)
		if err == nil {
			h.ok()
		}
		if err == nil || !utilnet.IsConnectionRefused(err) || ctx.Err() != nil {
			return v, err
		}
		h.failed(err)
		if !backoff.Sleep(ctx, bo.Next()) {
			return v, err
		}
	}
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
