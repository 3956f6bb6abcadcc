package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
)

// kubeSamples is how many NotReady/Ready round trips the suite times.
const kubeSamples = 100

// benchKubernetesPropagation measures, on a real kube-apiserver and
// EndpointSlice controller (kubetest; no kubelet, so the Pod status is
// written the way a kubelet writes it): a Pod turning NotReady (and Ready
// again) until a Warren instancer of another Registry publishes the
// change. The path is Pod status → controller → EndpointSlice → informer
// → instancer, the one a failing readiness probe takes in a cluster.
func benchKubernetesPropagation(ctx context.Context, rep *report) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	c, err := kubetest.Start(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	kubelet, err := c.Kubelet()
	if err != nil {
		return err
	}
	writer, err := kubernetes.New(ctx, kubernetes.WithRESTConfig(c.Config()), kubernetes.WithNamespace(kubetest.Namespace), kubernetes.WithKubelet(kubelet))
	if err != nil {
		return err
	}
	defer writer.Close()
	reader, err := kubernetes.New(ctx, kubernetes.WithRESTConfig(c.Config()), kubernetes.WithNamespace(kubetest.Namespace))
	if err != nil {
		return err
	}
	defer reader.Close()
	in, err := reader.Instancer(ctx, "bench-kube")
	if err != nil {
		return err
	}
	defer in.Stop()
	sub := subscribe(in)
	defer sub.close()

	// Two instances, so the service never empties: the one that flips and
	// one that stays, as in a real rollout.
	stay := registry.Instance{ID: "bench-kube-0", Name: "bench-kube", Endpoints: []string{"http://192.0.2.10:8080"}}
	flip := registry.Instance{ID: "bench-kube-1", Name: "bench-kube", Endpoints: []string{"http://192.0.2.11:8080"}}
	has := func(id string) func(sd.Event) bool {
		return func(ev sd.Event) bool {
			return ev.Err == nil && slices.ContainsFunc(ev.Instances, func(s string) bool {
				inst, err := registry.ParseInstance(s)
				return err == nil && inst.ID == id
			})
		}
	}
	for _, inst := range []registry.Instance{stay, flip} {
		if err := writer.Register(ctx, inst); err != nil {
			return err
		}
	}
	if err := sub.await(ctx, func(ev sd.Event) bool { return has(stay.ID)(ev) && has(flip.ID)(ev) }); err != nil {
		return err
	}
	const warmup = 5
	var down, up []time.Duration
	for i := range warmup + kubeSamples {
		start := time.Now()
		if err := writer.Deregister(ctx, flip); err != nil { // the Pod turns NotReady
			return err
		}
		if err := sub.await(ctx, func(ev sd.Event) bool { return has(stay.ID)(ev) && !has(flip.ID)(ev) }); err != nil {
			return err
		}
		dDown := time.Since(start)
		start = time.Now()
		if err := writer.Register(ctx, flip); err != nil { // Ready again
			return err
		}
		if err := sub.await(ctx, has(flip.ID)); err != nil {
			return err
		}
		if i >= warmup {
			down, up = append(down, dDown), append(up, time.Since(start))
		}
	}
	const suite = "kubernetes-propagation"
	note := fmt.Sprintf("n=%d, kube-apiserver + EndpointSlice controller on loopback", kubeSamples)
	rep.add(row{Suite: suite, Metric: "pod NotReady→client event p50", Value: ms(percentile(down, 50)), Unit: "ms", Note: note})
	rep.judged(row{Suite: suite, Metric: "pod NotReady→client event p99", Value: ms(percentile(down, 99)), Unit: "ms",
		Goal: "≤ 1000 ms", Note: note}, percentile(down, 99) <= time.Second)
	rep.add(row{Suite: suite, Metric: "pod NotReady→client event max", Value: ms(slices.Max(down)), Unit: "ms", Note: note})
	rep.add(row{Suite: suite, Metric: "pod Ready→client event p50", Value: ms(percentile(up, 50)), Unit: "ms", Note: note})
	rep.add(row{Suite: suite, Metric: "pod Ready→client event p99", Value: ms(percentile(up, 99)), Unit: "ms", Note: note})
	return nil
}
