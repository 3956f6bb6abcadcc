package client

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// TestCall_RetriesNeverReturnToAnInstanceTheCallFailedOn: four listed
// instances refuse connections (they exited while the registry could not
// be told, and ejection is off, as the ejection cap leaves some in
// rotation) and one answers. With 5 attempts every call reaches the live
// one: a retry goes to an instance the call has not failed on while one
// may take traffic. Balancers avoid only the previous attempt's instance,
// so retries used to bounce between dead ones (report j53b 1).
func TestCall_RetriesNeverReturnToAnInstanceTheCallFailedOn(t *testing.T) {
	log := &hitLog{}
	insts := refusing(t, log, 4)
	live := startBackend(t, "", log)
	insts = append(insts, live.inst)
	for name, bal := range map[string]func() balancer.Balancer{
		"p2c":         func() balancer.Balancer { return balancer.NewP2C() },
		"random":      func() balancer.Balancer { return balancer.NewRandom() },
		"round robin": func() balancer.Balancer { return balancer.NewRoundRobin() },
		"hash":        func() balancer.Balancer { return must(balancer.NewConsistentHash()) },
	} {
		c := newClient(t, newRegistry(t, insts...), WithBalancer(bal()), WithoutOutlier(),
			WithRetry(retry.WithMaxAttempts(5), retry.WithBackoff(time.Microsecond, time.Microsecond), retry.WithBudget(nil)))
		before := live.hits.Load()
		failed := 0
		var first error
		for i := range 40 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{}, HashKey(fmt.Sprint(i)))
			cancel()
			if err != nil {
				failed++
				if first == nil {
					first = err
				}
			}
		}
		// At least 40: a GET's hedge may reach it twice.
		if failed > 0 || live.hits.Load()-before < 40 {
			t.Errorf("%s: %d of 40 calls failed (first: %v), the live instance answered %d; want 0 failed, 40 answered",
				name, failed, first, live.hits.Load()-before)
		}
	}
}

// TestCall_GetsPastMoreDeadInstancesThanAttempts: on the defaults (3
// attempts, outlier ejection capped at half the set), four listed
// instances that refuse connections and two live ones: every call, a POST
// that is not idempotent included, reaches a live one. Refusals spend no
// attempt (retry.MaxRefusedFree) and retries avoid the instances the call
// failed on; around registry restarts under churn 35 of ~2,700 calls
// failed with three attempts spent on three dead instances (report r54a).
func TestCall_GetsPastMoreDeadInstancesThanAttempts(t *testing.T) {
	log := &hitLog{}
	insts := refusing(t, log, 4)
	a, b := startBackend(t, "", log), startBackend(t, "", log)
	insts = append(insts, a.inst, b.inst)
	c := newClient(t, newRegistry(t, insts...))
	failed := 0
	var first error
	for i := range 60 {
		method := "GET"
		if i%2 == 1 {
			method = "POST"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Call[echoReq, echoResp](ctx, c, method, "/", echoReq{})
		cancel()
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 || a.hits.Load()+b.hits.Load() < 60 { // a GET's hedge may answer twice
		t.Fatalf("%d of 60 calls failed (first: %v), the live instances answered %d; want 0 failed, 60 answered",
			failed, first, a.hits.Load()+b.hits.Load())
	}
}

// retryCounter counts Retried reports.
type retryCounter struct {
	NopObserver
	n atomic.Int64
}

func (r *retryCounter) Retried(string) { r.n.Add(1) }

// TestCall_RetriesAfterRefusalsAreCounted: every attempt after the first
// is a retry to the observer (warren_client_retries_total), also those a
// refusal spent no attempt on (retry.MaxRefusedFree), whose attempt
// number the policy leaves as it was (report r54c).
func TestCall_RetriesAfterRefusalsAreCounted(t *testing.T) {
	log := &hitLog{}
	insts := refusing(t, log, 4)
	live := startBackend(t, "", log)
	insts = append(insts, live.inst)
	obs := &retryCounter{}
	// Round robin from the first dead instance: 4 refusals, then the live one.
	c := newClient(t, newRegistry(t, insts...), WithBalancer(balancer.NewRoundRobin()), WithoutOutlier(), WithObserver(obs),
		WithRetry(retry.WithMaxAttempts(3), retry.WithBackoff(time.Microsecond, time.Microsecond), retry.WithBudget(nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var refusedAttempts int64
	for range 5 {
		before := obs.n.Load()
		if _, err := Call[echoReq, echoResp](ctx, c, "POST", "/", echoReq{}); err != nil {
			t.Fatal(err)
		}
		refusedAttempts += obs.n.Load() - before
	}
	// 5 calls over a ring of 4 dead and 1 live: each call's retries are
	// its refusals, and the ring makes them add up to at least 4 in all.
	if refusedAttempts < 4 {
		t.Fatalf("%d retries reported over 5 calls that met 4 refusing instances; want every attempt after the first reported", refusedAttempts)
	}
}

// refusing returns n instances whose backends were started and killed:
// listed, and refusing connections.
func refusing(t *testing.T, log *hitLog, n int) []registry.Instance {
	t.Helper()
	var insts []registry.Instance
	for range n {
		b := startBackend(t, "", log)
		b.kill() // connection refused from now on
		insts = append(insts, b.inst)
	}
	return insts
}
