package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/warren-mesh/warren/framework/registry"
)

// Services implements registry.Catalog: the Services of the namespace
// (valid names only) whose EndpointSlices hold at least one ready
// endpoint, sorted. It reads the Registry's informer cache, waiting
// (bounded by ctx) for its first listing.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	inf, err := r.watches()
	if err != nil {
		return nil, err
	}
	if err := r.waitSynced(ctx, inf); err != nil {
		return nil, err
	}
	sls, err := inf.slices.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("kubernetes registry: services: %w", err)
	}
	var out []string
	for _, sl := range sls {
		name := sl.Labels[discoveryv1.LabelServiceName]
		if !registry.ValidName(name) || slices.Contains(out, name) {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// whyProbeTimeout bounds the one request whyNotSynced makes.
const whyProbeTimeout = time.Second

// waitSynced waits for the first listing of every cache. A refusal (401,
// 403) ends the wait at once: client-go would retry it until ctx ends, and
// `warren ls` took its whole 10 s to report a missing Role (report j47a).
// Otherwise, when ctx ends first, the error says why (a refused list
// retries, and "context deadline exceeded" alone hides the answer).
func (r *Registry) waitSynced(ctx context.Context, inf *caches) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !inf.hasSynced() {
		inf.mu.Lock()
		last := inf.lastErr
		inf.mu.Unlock()
		if apierrors.IsForbidden(last) || apierrors.IsUnauthorized(last) {
			return fmt.Errorf("kubernetes registry: services in namespace %q: %w", r.namespace, notSyncedBecause(last, r.namespace))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubernetes registry: services in namespace %q: %w (%w)", r.namespace, r.whyNotSynced(inf), ctx.Err())
		case <-r.life.Done(): // Close stopped the informers: no listing will come
			return fmt.Errorf("kubernetes registry: services: %w", registry.ErrClosed)
		case <-tick.C:
		}
	}
	return nil
}

// whyNotSynced is the reason the caches are not synced: the informers'
// last list or watch failure, else the answer to one list of the
// namespace's EndpointSlices. The informers retry an unreachable
// apiserver (connection refused) without reporting it, so only asking
// tells an operator that nothing answers.
func (r *Registry) whyNotSynced(inf *caches) error {
	inf.mu.Lock()
	err := inf.lastErr
	inf.mu.Unlock()
	if err == nil {
		err = r.readOne(context.Background(), whyProbeTimeout)
	}
	return notSyncedBecause(err, r.namespace)
}

// readOne lists one EndpointSlice of the namespace, within d: the
// cheapest request that answers whether this account may read what the
// instancers read.
func (r *Registry) readOne(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := r.client.DiscoveryV1().EndpointSlices(r.namespace).List(ctx, metav1.ListOptions{Limit: 1})
	return err
}

// NamespaceExists asks the apiserver whether the Registry's namespace
// exists. A list in a namespace that does not exist answers an empty list,
// as one in an empty namespace does, so `warren ls` asks this when it
// found nothing (report j56a: a misspelt namespace read as an empty one).
// It needs get on namespaces, which the chart's Role does not grant: an
// account with only that Role gets a 403 listing any other namespace, so
// the silent case is a reader with cluster-wide list rights (a
// kubeconfig), who usually may get namespaces. A refusal or no answer is
// the error: nothing is known then.
func (r *Registry) NamespaceExists(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, whyProbeTimeout)
	defer cancel()
	_, err := r.client.CoreV1().Namespaces().Get(ctx, r.namespace, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("kubernetes registry: namespace %q: %w", r.namespace, err)
	}
}
