package order

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/servicetest"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/services/user"
)

// pinnable is a user instance's shedder with room for one request, whose
// slot a test can take to pin the instance busy. The run-queue signal is
// off: it is process-wide, and the instances here share one process (it
// has tests of its own in package shed).
func pinnable(t *testing.T) *shed.Limiter {
	t.Helper()
	l, err := shed.New(shed.WithQueueProbe(nil), shed.WithLimits(1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The mesh test: two user instances, one pinned busy, and order's
// callers see no errors — the busy instance answers "overloaded" at once,
// order's user client retries on the other and leaves the busy one alone.
// With both pinned, order's reads degrade through the user.Get fallback
// (orders without names) and its Create fails cleanly, placing nothing.
func TestOverload_OneUserInstanceBusyNoErrorsBothBusyOrderDegrades(t *testing.T) {
	reg := memory.New()
	ctx := context.Background()
	opts := []app.Option{app.WithListen("127.0.0.1:0"), app.WithGracePeriod(0), app.WithSignals(false), app.WithLogger(log.NewNopLogger())}

	users := user.New(user.NewMemoryStore()) // both instances share it
	var lims []*shed.Limiter
	for range 2 {
		lim := pinnable(t)
		lims = append(lims, lim)
		ua, err := app.New("user", user.NewHTTPHandler(user.MakeEndpoints(users), log.NewNopLogger()), sharedRegistry{reg},
			append(opts, app.WithShedding(lim))...)
		if err != nil {
			t.Fatal(err)
		}
		servicetest.Run(t, ua)
	}

	uc, err := user.NewClient(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	names := uc.WithFallbacks(user.Fallbacks{Get: func(_ context.Context, req user.GetRequest, _ error) (user.User, error) {
		return user.User{ID: req.ID}, nil
	}})
	svc := New(uc, NewMemoryStore(), WithNames(names))
	orderLim, err := shed.New(shed.WithQueueProbe(nil))
	if err != nil {
		t.Fatal(err)
	}
	oa, err := app.New("order", NewHTTPHandler(MakeEndpoints(svc), log.NewNopLogger()), sharedRegistry{reg},
		append(opts, app.WithShedding(orderLim))...)
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Run(t, oa)
	oc, err := NewClient(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()

	ada, err := users.Create(ctx, user.CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	items := []Item{{SKU: "book", Quantity: 1, PriceCents: 500}}

	// One user instance pinned busy.
	busy, _ := lims[0].Acquire()
	var errs []error
	var placed []Order
	for i := 0; i < 300 && (i < 40 || lims[0].Stats().ShedLimit == 0); i++ {
		var err error
		switch i % 3 {
		case 0:
			var o Order
			o, err = oc.Create(ctx, CreateRequest{UserID: ada.ID, Items: items})
			if err == nil {
				placed = append(placed, o)
			}
		case 1:
			var page ListResponse
			page, err = oc.List(ctx, ListRequest{UserID: ada.ID})
			if err == nil {
				for _, o := range page.Orders {
					if o.UserName != "Ada" {
						err = fmt.Errorf("order %s lists user name %q with one user instance up, want Ada", o.ID, o.UserName)
					}
				}
			}
		case 2:
			if len(placed) > 0 {
				var o Order
				o, err = oc.Get(ctx, GetRequest{ID: placed[len(placed)-1].ID})
				if err == nil && o.UserName != "Ada" {
					err = fmt.Errorf("order %s has user name %q, want Ada", o.ID, o.UserName)
				}
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if n := lims[0].Stats().ShedLimit; n == 0 {
		t.Fatal("the busy user instance was never asked: the test proved nothing")
	}
	if len(errs) > 0 {
		t.Fatalf("%d errors with one of two user instances busy (it shed %d requests); first: %v", len(errs), lims[0].Stats().ShedLimit, errs[0])
	}
	t.Logf("one instance busy: %d orders placed, busy instance shed %d, other admitted %d", len(placed), lims[0].Stats().ShedLimit, lims[1].Stats().Admitted)

	// Both pinned busy: reads degrade, Create refuses.
	busy2, _ := lims[1].Acquire()
	for range 5 {
		page, err := oc.List(ctx, ListRequest{UserID: ada.ID})
		if err != nil {
			t.Fatalf("List with every user instance busy: %v, want orders without names", err)
		}
		if len(page.Orders) != len(placed) {
			t.Fatalf("List with every user instance busy: %d orders, want %d", len(page.Orders), len(placed))
		}
		for _, o := range page.Orders {
			if o.UserName != "" || o.UserID != ada.ID {
				t.Fatalf("degraded order %+v, want the user ID without a name", o)
			}
		}
		o, err := oc.Get(ctx, GetRequest{ID: placed[0].ID})
		if err != nil || o.UserName != "" {
			t.Fatalf("Get with every user instance busy: %+v, %v; want the order without a name", o, err)
		}
	}
	if _, err := oc.Create(ctx, CreateRequest{UserID: ada.ID, Items: items}); !errors.Is(err, ErrUserServiceUnavailable) {
		t.Fatalf("Create with every user instance busy: %v, want ErrUserServiceUnavailable", err)
	}
	page, err := oc.List(ctx, ListRequest{UserID: ada.ID})
	if err != nil || len(page.Orders) != len(placed) {
		t.Fatalf("after the refused Create: %d orders, %v; want %d, nothing placed", len(page.Orders), err, len(placed))
	}

	// Released: names come back.
	busy.Release()
	busy2.Release()
	if o, err := oc.Get(ctx, GetRequest{ID: placed[0].ID}); err != nil {
		t.Fatalf("Get after the overload: %v", err)
	} else if o.UserName != "Ada" {
		// The client may still hold both instances for up to a few
		// seconds; the fallback keeps answering meanwhile.
		t.Logf("name still degraded right after release (instances held): %+v", o)
	}
}
