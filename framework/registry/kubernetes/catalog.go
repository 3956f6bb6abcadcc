package kubernetes

import (
	"context"
	"fmt"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

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
	if !cache.WaitForCacheSync(ctx.Done(), inf.synced...) {
		return nil, fmt.Errorf("kubernetes registry: services: %w", ctx.Err())
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
