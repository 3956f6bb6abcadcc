package order

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/servicetest"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/services/user"
)

// pinnable is a user instance's shedder with room for n requests, whose
// slots a test can take to pin the instance busy (pin).
func pinnable(t *testing.T, n int) *shed.Limiter {
	t.Helper()
	l, err := shed.New(shed.WithLimits(n, n, n))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pin takes every free slot of l and returns what gives them back.
func pin(l *shed.Limiter) (release func()) {
	var held []shed.Token
	for {
		tok, why := l.Acquire()
		if why != shed.Admitted {
			break
		}
		held = append(held, tok)
	}
	return func() {
		for _, tok := range held {
			tok.Release()
		}
	}
}

// The mesh test: two user instances, one pinned busy, and order's
// callers see no errors — the busy instance answers "overloaded" at once,
// order's user client retries on the other and leaves the busy one alone.
// With both pinned, order's reads degrade through the user.Get fallback
// (orders without names) and its Create fails cleanly, placing nothing.
func TestOverload_OneUserInstanceBusyNoErrorsBothBusyOrderDegrades(t *testing.T) {
	reg := memory.New()
	// The test's own deadline: generous for a loaded machine, so it fails
	// rather than hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := []app.Option{app.WithListen("127.0.0.1:0"), app.WithGracePeriod(0), app.WithSignals(false), app.WithLogger(log.NewNopLogger())}

	users := user.New(user.NewMemoryStore()) // both instances share it
	var lims []*shed.Limiter
	for range 2 {
		// Room for all of order's callers at once, and a fixed limit so
		// that pin can fill it.
		lim := pinnable(t, 64)
		lims = append(lims, lim)
		ua, err := app.New("user", user.NewHTTPHandler(user.MakeEndpoints(users), log.NewNopLogger()), sharedRegistry{reg},
			append(opts, app.WithShedding(lim))...)
		if err != nil {
			t.Fatal(err)
		}
		servicetest.Run(t, ua)
	}

	// No per-attempt deadline on order's user client (nor on the test's
	// order client): order's callers see no errors because the busy
	// instance refuses at once, not because an attempt that waited on it
	// was abandoned in time and retried.
	uc, err := user.NewClient(ctx, reg, client.WithRetry(retry.WithoutAdaptiveTimeout()))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	names := uc.WithFallbacks(user.Fallbacks{Get: func(_ context.Context, req user.GetRequest, _ error) (user.User, error) {
		return user.User{ID: req.ID}, nil
	}})
	svc := New(uc, NewMemoryStore(), WithNames(names))
	oa, err := app.New("order", NewHTTPHandler(MakeEndpoints(svc), log.NewNopLogger()), sharedRegistry{reg}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Run(t, oa)
	oc, err := NewClient(ctx, reg, client.WithRetry(retry.WithoutAdaptiveTimeout()))
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()

	ada, err := users.Create(ctx, user.CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	items := []Item{{SKU: "book", Quantity: 1, PriceCents: 500}}

	// One user instance pinned busy; eight of order's callers at once,
	// each call with a deadline far above any answer's time on a loaded
	// machine: a call that waited on the busy instance (rather than being
	// refused by it at once) would run into it and count as an error.
	unpin0 := pin(lims[0])
	const callers, least, most = 8, 30, 150 // at most 400 orders: one page of 500
	var (
		mu     sync.Mutex
		errs   []error
		placed []Order
		wg     sync.WaitGroup
	)
	for c := range callers {
		wg.Go(func() {
			var mine []Order
			for i := 0; i < most && (i < least || lims[0].Stats().ShedLimit < callers); i++ {
				err := func() error {
					ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
					defer cancel()
					switch (c + i) % 3 {
					case 0:
						o, err := oc.Create(ctx, CreateRequest{UserID: ada.ID, Items: items})
						if err == nil {
							mine = append(mine, o)
						}
						return err
					case 1:
						page, err := oc.List(ctx, ListRequest{UserID: ada.ID})
						if err != nil {
							return err
						}
						for _, o := range page.Orders {
							if o.UserName != "Ada" {
								return fmt.Errorf("order %s lists user name %q with one user instance up, want Ada", o.ID, o.UserName)
							}
						}
					default:
						if len(mine) > 0 {
							o, err := oc.Get(ctx, GetRequest{ID: mine[len(mine)-1].ID})
							if err == nil && o.UserName != "Ada" {
								err = fmt.Errorf("order %s has user name %q, want Ada", o.ID, o.UserName)
							}
							return err
						}
					}
					return nil
				}()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
			mu.Lock()
			placed = append(placed, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := lims[0].Stats().ShedLimit; n == 0 {
		t.Fatal("the busy user instance was never asked: the test proved nothing")
	}
	if len(errs) > 0 {
		t.Fatalf("%d errors with one of two user instances busy (it shed %d requests); first: %v", len(errs), lims[0].Stats().ShedLimit, errs[0])
	}
	t.Logf("one instance busy: %d orders placed, busy instance shed %d, other admitted %d", len(placed), lims[0].Stats().ShedLimit, lims[1].Stats().Admitted)

	// Both pinned busy: reads degrade, Create refuses.
	unpin1 := pin(lims[1])
	for range 5 {
		page, err := oc.List(ctx, ListRequest{UserID: ada.ID, Limit: 500})
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
	page, err := oc.List(ctx, ListRequest{UserID: ada.ID, Limit: 500})
	if err != nil || len(page.Orders) != len(placed) {
		t.Fatalf("after the refused Create: %d orders, %v; want %d, nothing placed", len(page.Orders), err, len(placed))
	}

	// Released: names come back.
	unpin0()
	unpin1()
	if o, err := oc.Get(ctx, GetRequest{ID: placed[0].ID}); err != nil {
		t.Fatalf("Get after the overload: %v", err)
	} else if o.UserName != "Ada" {
		// The client may still hold both instances for up to a few
		// seconds; the fallback keeps answering meanwhile.
		t.Logf("name still degraded right after release (instances held): %+v", o)
	}
}
