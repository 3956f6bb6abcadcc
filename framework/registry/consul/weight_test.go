package consul

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// A weight above 65535 used to reach the agent and come back as its 400
// "Invalid Weights: DNS Weight must be between 0 and 65535". Register now
// refuses it itself, naming the limit and why, and registers nothing; the
// limit is the agent's own: 65535 registers on the real agent.
func TestRegister_WeightAboveConsulsLimitIsRefused(t *testing.T) {
	a := needAgent(t)
	r := newRegistry(t, a.Addr())
	ctx := ctxT(t, time.Minute) // bounds a failing test only

	over := registry.Instance{ID: "weight-over-1", Name: "weightcap", Endpoints: []string{"http://127.0.0.1:4321"}, Weight: maxWeight + 1}
	err := r.Register(ctx, over)
	if !errors.Is(err, registry.ErrInvalidInstance) {
		t.Fatalf("Register(weight %d) = %v, want ErrInvalidInstance", over.Weight, err)
	}
	for _, want := range []string{"65536", "65535", "16-bit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %s: %v", want, err)
		}
	}
	t.Logf("refused: %v", err)
	if _, _, err := r.Client().Agent().Service(over.ID, nil); err == nil {
		t.Error("the refused instance is registered at the agent")
	}

	top := registry.Instance{ID: "weight-top-1", Name: "weightcap", Endpoints: []string{"http://127.0.0.1:4322"}, Weight: maxWeight}
	if err := r.Register(ctx, top); err != nil {
		t.Fatalf("Register(weight %d), which the agent takes: %v", top.Weight, err)
	}
	svc, _, err := r.Client().Agent().Service(top.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Weights.Passing != maxWeight {
		t.Errorf("the agent holds passing weight %d, want %d", svc.Weights.Passing, maxWeight)
	}
}
