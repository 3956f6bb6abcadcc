package order

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/fallback"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/servicetest"
	"github.com/warren-mesh/warren/services/user"
)

// The user service withdrawn (an outage as order sees it) and back under
// the same ID: while it is gone, Create answers user_service_unavailable
// and reads degrade to orders without names (cmd/order's fallback); once
// it is back, orders are placed again and reads carry the names again —
// nothing of the outage stays behind in the client, the fallback or the
// memory registry's watch.
func TestOrder_UserServiceBackUnderTheSameID_OrdersAndNamesComeBack(t *testing.T) {
	reg := memory.New()
	ctx := context.Background()
	opts := []app.Option{app.WithListen("127.0.0.1:0"), app.WithGracePeriod(0), app.WithSignals(false), app.WithLogger(log.NewNopLogger())}
	ua, err := app.New("user", user.NewHTTPHandler(user.MakeEndpoints(user.New(user.NewMemoryStore())), log.NewNopLogger()), sharedRegistry{reg}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Run(t, ua)
	uc, err := user.NewClient(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	names := uc.WithFallbacks(user.Fallbacks{Get: func(_ context.Context, req user.GetRequest, _ error) (user.User, error) {
		return user.User{ID: req.ID}, nil
	}}, fallback.WithLogger(log.NewNopLogger()))
	s := New(uc, NewMemoryStore(), WithNames(names))

	ada, err := uc.Create(ctx, user.CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	req := CreateRequest{UserID: ada.ID, Items: []Item{{SKU: "a", Quantity: 1}}}
	placed, err := s.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// eventually polls f for at most 20 s, 5 s per call.
	eventually := func(what string, f func(context.Context) error) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := f(cctx)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v (20 s)", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	for round := range 2 {
		if err := reg.Deregister(ctx, ua.Instance()); err != nil {
			t.Fatal(err)
		}
		eventually("Create while user is withdrawn", func(ctx context.Context) error {
			if _, err := s.Create(ctx, req); !errors.Is(err, ErrUserServiceUnavailable) {
				return errors.New("not yet user_service_unavailable")
			}
			return nil
		})
		if o, err := s.Get(ctx, GetRequest{ID: placed.ID}); err != nil || o.UserName != "" {
			t.Fatalf("round %d: Get while user is withdrawn = %+v, %v; want the order without a name", round, o, err)
		}
		if err := reg.Register(ctx, ua.Instance()); err != nil {
			t.Fatal(err)
		}
		eventually("Create once user is back", func(ctx context.Context) error { _, err := s.Create(ctx, req); return err })
		eventually("names once user is back", func(ctx context.Context) error {
			o, err := s.Get(ctx, GetRequest{ID: placed.ID})
			if err == nil && o.UserName != "Ada" {
				err = errors.New("no name yet: " + o.UserName)
			}
			return err
		})
	}
}
