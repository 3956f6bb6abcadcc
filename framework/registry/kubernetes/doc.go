// Package kubernetes is the Kubernetes backend of Warren's service
// registry: discovery from EndpointSlices through client-go informers,
// and a registrar that leaves registration to the kubelet.
//
// # Discovery
//
// A service is a Kubernetes Service of the same name in the Registry's
// namespace. Its instances are the ready endpoints of its EndpointSlices
// (conditions.ready true or unset; terminating and not-ready endpoints are
// left out):
//
//   - ID: the Pod's name (the endpoint's targetRef), else name-address-port;
//   - endpoints: one per slice port whose name is a Warren scheme (http,
//     https, grpc, grpcs; WithSchemes), scheme://address:port, in the
//     Service's port order; other ports (metrics) are not endpoints;
//   - zone: the endpoint's zone (the controller copies it from the Node's
//     topology.kubernetes.io/zone label);
//   - version, weight, tags, metadata: the Pod's annotations
//     warren.dev/version (else the app.kubernetes.io/version label),
//     warren.dev/weight, warren.dev/tags (comma-separated) and one
//     meta.warren.dev/KEY per metadata key. An unusable annotation (a
//     weight that is not a positive integer) makes the endpoint skipped,
//     counted (Observer.Skipped), logged and listed with the reason
//     (Instancer.Skipped, which warren ls and watch print), never served
//     half-read.
//
// A Registry runs one informer each for the namespace's Pods, Services
// and EndpointSlices, shared by all its instancers and its Catalog
// (registry.Catalog: the Services with at least one ready endpoint).
// Through an apiserver outage the informers keep their caches and list
// again when it is back; the instancers keep serving what they have. A
// refused connection is retried within 5 s, afresh at every list and
// watch, not with client-go's backoff, which grows to 30-60 s through an
// outage and would leave the caches stale that long after it.
//
// # Ordered delivery
//
// The EndpointSlice controller batches Pod changes and writes a Service's
// slices one API call at a time: creates, then updates, then deletes.
// Endpoints with different ports land in different slices, so a reader of
// the slices alone can see half of one sync — an endpoint added in a new
// slice before the old slice drops another — a set the service never
// had. An instancer therefore publishes a set only when the slices agree
// with the Pods they were computed from: every Pod the Service selects
// that is ready now (by the controller's own rule) is listed ready, and
// nothing else is. The Pod cache moves through the Pods' states in order,
// so every published set is one of them, in order; changes may be
// coalesced, never reordered. While they disagree the last set stays; if
// they disagree for longer than the max hold (10 s; WithMaxHold) — a Pod
// the controller can never list, on a Node that does not exist — the
// slices are served as they are, with a warning.
//
// # Registration: the kubelet is the registrar
//
// On Kubernetes, whether a Pod receives traffic is its readiness, which
// the kubelet decides by probing the container, and the EndpointSlice
// controller publishes. So Register and Deregister write nothing: they
// flip the registration state (Status) that Warren's /readyz reports, the
// readiness probe fails or passes, and the endpoint leaves or joins. The
// lifecycle's grace period maps onto the Pod's: a preStop hook that waits
// while the endpoint is withdrawn and terminationGracePeriodSeconds longer
// than preStop plus the drain (deploy/k8s and docs/kubernetes.md).
//
// Where no kubelet runs — the tests, against a bare apiserver — a Kubelet
// (WithKubelet; kubetest.Kubelet) stands in for it: Register and
// Deregister hand it the readiness, and it writes the Pod and its status
// as the kubelet would, so the conformance suite checks the whole path
// through the real apiserver and EndpointSlice controller.
package kubernetes
