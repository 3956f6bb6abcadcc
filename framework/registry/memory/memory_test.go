package memory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

func TestRegistry_InstancerSeesRegisterAndDeregister(t *testing.T) {
	r := New()
	ctx := context.Background()
	ins, err := r.Instancer(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Stop()
	ch := make(chan sd.Event, 4)
	ins.Register(ch)
	defer ins.Deregister(ch)
	next := func() sd.Event {
		select {
		case ev := <-ch:
			return ev
		case <-time.After(time.Second):
			t.Fatal("no event")
			return sd.Event{}
		}
	}
	if ev := next(); len(ev.Instances) != 0 {
		t.Fatalf("initial %v", ev.Instances)
	}
	inst := registry.Instance{ID: "a", Name: "svc", Endpoints: []string{"http://127.0.0.1:1"}, Metadata: map[string]string{"k": "v"}}
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	ev := next()
	got, err := registry.ParseInstance(ev.Instances[0])
	if err != nil || got.Metadata["k"] != "v" {
		t.Fatalf("event %v: %+v %v", ev.Instances, got, err)
	}
	if err := r.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if ev := next(); len(ev.Instances) != 0 {
		t.Fatalf("after deregister %v", ev.Instances)
	}
}

func TestRegistry_ConflictInvalidAndClosed(t *testing.T) {
	srv := NewServer()
	r, other := srv.Registry(), srv.Registry()
	ctx := context.Background()
	a := registry.Instance{ID: "a", Name: "svc", Endpoints: []string{"http://127.0.0.1:1"}}
	if err := r.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx, a); err != nil {
		t.Fatalf("same address again: %v", err)
	}
	b := a
	b.Endpoints = []string{"http://127.0.0.1:2"}
	if err := other.Register(ctx, b); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}
	if err := r.Register(ctx, b); err != nil {
		t.Fatalf("the holder moving its own instance: %v", err)
	}
	if err := r.Register(ctx, registry.Instance{Name: "svc"}); !errors.Is(err, registry.ErrInvalidInstance) {
		t.Fatalf("invalid: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Register(ctx, a); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}
