package consul

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// holdRegister holds every service-register call until release is closed
// or the call's context ends, and says when the first one arrived.
type holdRegister struct {
	next    http.RoundTripper
	arrived chan struct{}
	once    sync.Once
	release chan struct{}
}

func (h *holdRegister) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/agent/service/register") {
		h.once.Do(func() { close(h.arrived) })
		select {
		case <-h.release:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return h.next.RoundTrip(req)
}

// TestRegistry_DeregisterDuringRegisterLeavesNothingRegistered: a
// Deregister that comes while Register waits for the agent used to
// withdraw nothing (the agent did not have it yet) and return, after which
// Register completed and kept the instance registered with nobody to
// withdraw it. Calls for one ID are now serialised, the later one winning.
func TestRegistry_DeregisterDuringRegisterLeavesNothingRegistered(t *testing.T) {
	a := needAgent(t)
	hold := &holdRegister{arrived: make(chan struct{}), release: make(chan struct{})}
	r := newRegistry(t, a.Addr(), WithTTLCheck(3*time.Second),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { hold.next = next; return hold }))
	inst := registry.Instance{ID: "race-1", Name: "race", Endpoints: []string{"http://127.0.0.1:8080"}}

	regErr := make(chan error, 1)
	go func() { regErr <- r.Register(ctxT(t, 20*time.Second), inst) }()
	select {
	case <-hold.arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("Register never reached the agent")
	}
	deregErr := make(chan error, 1)
	go func() { deregErr <- r.Deregister(ctxT(t, 20*time.Second), inst) }()
	select {
	case err := <-deregErr:
		if err != nil {
			t.Fatalf("Deregister: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Deregister hung")
	}
	close(hold.release) // let a still-held register through, as a slow agent would
	rerr := <-regErr
	t.Logf("Register returned %v", rerr)

	// The last call was Deregister: nothing may stay registered, now or
	// after a heartbeat that would re-register a kept instance.
	for range 2 {
		svcs, err := r.Client().Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := svcs[inst.ID]; ok {
			t.Fatalf("%s is registered after Deregister returned (Register returned %v)", inst.ID, rerr)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	if st := r.Status(); st.State == registry.StateRegistered {
		t.Fatalf("Status = %+v after Deregister", st)
	}
}
