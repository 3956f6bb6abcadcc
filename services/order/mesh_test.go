package order

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/servicetest"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/services/user"
)

// sharedRegistry keeps the memory registry open when an App closes it, so
// several apps and clients can share it in one test.
type sharedRegistry struct{ *memory.Registry }

func (sharedRegistry) Close() error { return nil }

func TestOrderCallsUserThroughDiscovery(t *testing.T) {
	reg := memory.New()
	ctx := context.Background()
	opts := []app.Option{app.WithListen("127.0.0.1:0"), app.WithGracePeriod(0), app.WithSignals(false), app.WithLogger(log.NewNopLogger())}

	users := user.New(user.NewMemoryStore())
	ua, err := app.New("user", user.NewHTTPHandler(user.MakeEndpoints(users), log.NewNopLogger()), sharedRegistry{reg}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Run(t, ua)

	uc, err := user.NewClient(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	oa, err := app.New("order", NewHTTPHandler(MakeEndpoints(New(uc, NewMemoryStore())), log.NewNopLogger()), sharedRegistry{reg}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Run(t, oa)

	oc, err := NewClient(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()

	ada, err := uc.Create(ctx, user.CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := oc.Create(ctx, CreateRequest{UserID: ada.ID, Items: []Item{{SKU: "book", Quantity: 1, PriceCents: 500}}})
	if err != nil || o.UserName != "Ada" || o.TotalCents != 500 {
		t.Fatalf("order = %+v, %v", o, err)
	}

	// A business error crosses two hops and is still checkable.
	_, err = oc.Create(ctx, CreateRequest{UserID: "u-nobody", Items: []Item{{SKU: "a", Quantity: 1}}})
	if !errors.Is(err, ErrUnknownUser) || svcerr.KindOf(err) != svcerr.FailedPrecondition {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := uc.Get(ctx, user.GetRequest{ID: "u-nobody"}); !errors.Is(err, user.ErrNotFound) {
		t.Fatalf("user.Get: %v", err)
	}

	// The user service gone: order answers 503 user_service_unavailable
	// once the withdrawal reached its user client (events are delivered
	// asynchronously; until then a call may still reach the instance,
	// which is still up).
	if err := reg.Deregister(ctx, ua.Instance()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = oc.Create(cctx, CreateRequest{UserID: ada.ID, Items: []Item{{SKU: "a", Quantity: 1}}})
		cancel()
		if errors.Is(err, ErrUserServiceUnavailable) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("user service down: %v, want %v (within 20 s of the withdrawal)", err, ErrUserServiceUnavailable)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
