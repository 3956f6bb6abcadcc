package client

import (
	"context"
	"fmt"
	"testing"
)

// docs/client.md, "Learnt per API method": each named method gets a
// policy of its own (its own deadline and hedge delay) that spends the
// client's one retry budget; "past 256 names per client, further methods
// share the client's policy". A bound of 1, or a budget per method,
// passed every other test. Real calls name the methods.
func TestGuard_MethodPoliciesShareTheBudgetAndStopAt256Names(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*callDeadline)
	defer cancel()
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	for i := range 258 {
		if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/echo", echoReq{}, Method(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := c.npolicies.Load(); n != 256 {
		t.Fatalf("%d method policies after 258 names, want 256", n)
	}
	first := c.methodPolicy("m0")
	if first == c.policy {
		t.Fatal("the first named method shares the client's policy, want one of its own")
	}
	if first.Budget() != c.policy.Budget() {
		t.Fatal("a method's own policy has a budget of its own, want the client's one budget")
	}
	if p := c.methodPolicy("m257"); p != c.policy {
		t.Fatal("the 258th name got a policy of its own, want the client's past 256")
	}
}
