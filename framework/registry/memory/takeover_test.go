package memory

import (
	"context"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// An ID taken over at the same address by another Registry (a newer run
// of the instance) is the newer one's: the old Registry's status turns
// withdrawn, and its Deregister leaves the newer record in place.
func TestRegistry_TakenOverIDIsTheNewersToKeep(t *testing.T) {
	ctx := context.Background()
	srv := NewServer()
	old, newer := srv.Registry(), srv.Registry()
	defer old.Close()
	defer newer.Close()
	inst := registry.Instance{ID: "u1", Name: "user", Endpoints: []string{"http://127.0.0.1:8080"}}
	if err := old.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if err := newer.Register(ctx, inst); err != nil {
		t.Fatalf("take-over at the same address: %v", err)
	}
	if s := old.Status().State; s != registry.StateWithdrawn {
		t.Errorf("old Registry's state %s after the take-over; want withdrawn", s)
	}
	if err := old.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if got := newer.Instances("user"); len(got) != 1 || got[0].ID != "u1" {
		t.Fatalf("after the old Registry's Deregister: %v; want the newer u1 kept", got)
	}
}
