package kubernetes_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/internal/tcpproxy"
)

// proxied opens a Registry (a Kubelet of its own, as newTestRegistry)
// that reaches the test apiserver through a proxy the test can cut: an
// apiserver out of reach for this Registry alone, while the Kubelet and
// every other test still reach it.
func proxied(t *testing.T, opts ...kubernetes.Option) (*kubernetes.Registry, *tcpproxy.Proxy) {
	t.Helper()
	rc := rest.CopyConfig(testCluster(t).Config())
	p, err := tcpproxy.New(strings.TrimPrefix(rc.Host, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	rc.Host = "https://" + p.Addr() // the apiserver's certificate names 127.0.0.1
	r, _ := newTestRegistry(t, append([]kubernetes.Option{kubernetes.WithRESTConfig(rc)}, opts...)...)
	return r, p
}

// waitUntil polls cond every 20 ms for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close ends a Register that waits for an unreachable apiserver (its
// check that the Pod can read EndpointSlices), and a Register after Close
// returns ErrClosed at once, reachable apiserver or not, as the
// conformance suite asks of a reachable one. Before, both read the
// apiserver first and waited for it until their ctx ended: a shutdown
// during an apiserver outage waited out the register timeout, and a
// closed Registry went on recording read failures in its Status.
func TestRegistry_CloseEndsARegisterWaitingForTheApiserver(t *testing.T) {
	r, p := proxied(t)
	svc := uniq("closewait")
	inst := registry.Instance{ID: svc + "-1", Name: svc, Endpoints: []string{"http://" + testHost + ":8080"}}
	p.Block()
	done := make(chan error, 1)
	go func() { done <- r.Register(ctxT(t, 40*time.Second), inst) }()
	waitUntil(t, wait, "Register says it waits for the apiserver", func() bool {
		return strings.Contains(r.Status().LastError, "reading EndpointSlices")
	})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, registry.ErrClosed) {
			t.Fatalf("Register ended by Close: err = %v, want registry.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Register still waiting for the apiserver 10 s after Close")
	}
	start := time.Now()
	err := r.Register(ctxT(t, 20*time.Second), inst)
	if !errors.Is(err, registry.ErrClosed) || time.Since(start) > 10*time.Second {
		t.Fatalf("Register after Close, apiserver out of reach: err = %v after %s, want registry.ErrClosed at once", err, time.Since(start).Round(time.Millisecond))
	}
	if st := r.Status(); st.State != registry.StateWithdrawn {
		t.Fatalf("Status after Close = %+v, want withdrawn", st)
	}
}

// Close ends a Services call that waits for the first listing while the
// apiserver is out of reach: the informers it waits for are stopped, so
// the wait could only end with ctx.
func TestRegistry_CloseEndsServicesWaitingForTheFirstListing(t *testing.T) {
	r, p := proxied(t)
	p.Block()
	done := make(chan error, 1)
	go func() {
		_, err := r.Services(ctxT(t, 40*time.Second))
		done <- err
	}()
	time.Sleep(time.Second) // within the wait for the first listing (it cannot end while blocked)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, registry.ErrClosed) {
			t.Fatalf("Services ended by Close: err = %v, want registry.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Services still waiting 10 s after Close")
	}
}

// A Deregister that comes while a Register of the same instance waits for
// the apiserver (its read check) wins: the Register does not put the
// instance into rotation once the apiserver answers. Before, Deregister
// found nothing registered and returned nil, and the older Register
// registered the instance after it (the readiness watchdog's restore
// landing after the shutdown's withdraw), as the etcd backend, which
// withdraws a pending registration, never does.
func TestRegistry_ADeregisterWhileRegisterWaitsForTheApiserverWins(t *testing.T) {
	r, p := proxied(t)
	defer r.Close()
	svc := uniq("regdereg")
	inst := registry.Instance{ID: svc + "-1", Name: svc, Endpoints: []string{"http://" + testHost + ":8080"}}
	p.Block()
	done := make(chan error, 1)
	go func() { done <- r.Register(ctxT(t, time.Minute), inst) }()
	waitUntil(t, wait, "Register says it waits for the apiserver", func() bool {
		return strings.Contains(r.Status().LastError, "reading EndpointSlices")
	})
	if err := r.Deregister(ctxT(t, wait), inst); err != nil {
		t.Fatal(err)
	}
	p.Unblock()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("Register returned nil after a Deregister that came while it waited; Status %+v", r.Status())
		}
		t.Logf("Register: %v", err)
	case <-time.After(wait):
		t.Fatalf("Register still waiting %s after the apiserver is reachable again", wait)
	}
	if st := r.Status(); st.State == registry.StateRegistered {
		t.Fatalf("Status after the Deregister = %+v, want not registered", st)
	}
	pod, err := client(t).CoreV1().Pods(kubetest.Namespace).Get(ctxT(t, wait), inst.ID, metav1.GetOptions{})
	if err == nil && podIsReady(pod) {
		t.Fatalf("the Kubelet set Pod %s Ready after its Deregister", inst.ID)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

func podIsReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// refuser forwards a 127.0.0.1 port of its own to the apiserver; down
// closes the port and every connection (connections refused, as from an
// apiserver that is down), up opens the same port again.
type refuser struct {
	target string
	mu     sync.Mutex
	addr   string
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newRefuser(t *testing.T, target string) *refuser {
	f := &refuser{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	f.up(t)
	t.Cleanup(func() { f.down(); f.wg.Wait() })
	return f
}

func (f *refuser) up(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.ln, f.addr = ln, ln.Addr().String()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", f.target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			if f.ln != ln { // closed meanwhile
				f.mu.Unlock()
				c.Close()
				u.Close()
				continue
			}
			f.conns[c], f.conns[u] = true, true
			f.mu.Unlock()
			f.wg.Add(2)
			go func() { defer f.wg.Done(); _, _ = io.Copy(u, c); u.Close() }()
			go func() { defer f.wg.Done(); _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (f *refuser) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln == nil {
		return
	}
	f.ln.Close()
	f.ln = nil
	for c := range f.conns {
		c.Close()
	}
	clear(f.conns)
}

// After a long apiserver outage (connections refused for 45 s), a change
// made once it is back reaches the instancer within the reconnect wait,
// not after client-go's reflector backoff, which grows through the
// outage to 30-60 s and resets only after 2 minutes without a failure:
// the caches stayed as they were, and a withdrawn Pod was served, for
// 31 s after the apiserver answered.
func TestInstancer_SeesAChangeSoonAfterALongApiserverOutage(t *testing.T) {
	rc := rest.CopyConfig(testCluster(t).Config())
	f := newRefuser(t, strings.TrimPrefix(rc.Host, "https://"))
	rc.Host = "https://" + f.addr // the apiserver's certificate names 127.0.0.1
	r, _ := newTestRegistry(t, kubernetes.WithRESTConfig(rc))
	defer r.Close()
	writer, _ := newTestRegistry(t)
	defer writer.Close()
	svc := uniq("longout")
	rec := record(t, r, svc)
	a := registry.Instance{ID: svc + "-a", Name: svc, Endpoints: []string{"http://" + testHost + ":8080"}}
	if err := writer.Register(ctxT(t, wait), a); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, wait, a.ID+" listed", registrytest.Has(a.ID))
	f.down()
	time.Sleep(45 * time.Second) // client-go's backoff reaches its 30 s cap
	f.up(t)
	if err := writer.Deregister(ctxT(t, wait), a); err != nil {
		t.Fatal(err)
	}
	// Within the 5 s reconnect wait, the controller's update and a
	// generous margin for a loaded machine.
	_, took := rec.WaitFor(t, 20*time.Second, a.ID+" withdrawn", registrytest.Lacks(a.ID))
	t.Logf("withdrawal seen %s after the apiserver took connections again", took.Round(time.Millisecond))
}

// Changes made while the apiserver is out of reach for a process reach
// its instancer once it is back, as one consistent state: a Pod turned
// NotReady, a Pod replaced at another address (deleted and created
// again under the same name, a new UID) and a new Pod. The set converges
// to what the Pods say, and no set after the outage serves the replaced
// Pod's old state beside the new Pod.
func TestInstancer_ChangesDuringAnOutageArriveAfterIt(t *testing.T) {
	rc := rest.CopyConfig(testCluster(t).Config())
	f := newRefuser(t, strings.TrimPrefix(rc.Host, "https://"))
	rc.Host = "https://" + f.addr
	r, _ := newTestRegistry(t, kubernetes.WithRESTConfig(rc))
	defer r.Close()
	writer, _ := newTestRegistry(t)
	defer writer.Close()
	svc := uniq("during")
	rec := record(t, r, svc)
	at := func(id string, port int) registry.Instance {
		return registry.Instance{ID: svc + "-" + id, Name: svc, Endpoints: []string{fmt.Sprintf("http://%s:%d", testHost, port)}}
	}
	a, b, b2, c := at("a", 8080), at("b", 8081), at("b", 9081), at("c", 8082)
	for _, inst := range []registry.Instance{a, b} {
		if err := writer.Register(ctxT(t, wait), inst); err != nil {
			t.Fatal(err)
		}
	}
	rec.WaitFor(t, wait, "a and b listed", func(ev sd.Event) bool { return slices.Equal(registrytest.IDs(ev), []string{a.ID, b.ID}) })
	f.down()
	if err := writer.Deregister(ctxT(t, wait), a); err != nil {
		t.Fatal(err)
	}
	if err := writer.Deregister(ctxT(t, wait), b); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []registry.Instance{b2, c} {
		if err := writer.Register(ctxT(t, wait), inst); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Second)
	n := len(rec.Events())
	f.up(t)
	rec.WaitFor(t, wait, "b at its new address and c", func(ev sd.Event) bool {
		got, ok := registrytest.ByID(ev, b.ID)
		return ok && got.HostPort() == b2.HostPort() && slices.Equal(registrytest.IDs(ev), []string{b.ID, c.ID})
	})
	// c exists only after a's and b's changes: a set with c and a, or c
	// and b's old address, is one the service never had.
	for i, ev := range rec.Events()[n:] {
		_, hasC := registrytest.ByID(ev, c.ID)
		_, hasA := registrytest.ByID(ev, a.ID)
		old, hasB := registrytest.ByID(ev, b.ID)
		if hasC && (hasA || hasB && old.HostPort() == b.HostPort()) {
			t.Fatalf("event %d after the outage mixes states: %v", n+i, ev.Instances)
		}
	}
}
