// Package order is the demo mesh's order service. Creating an order looks
// the user up in the user service through discovery (typed client,
// balancer, retries), so it shows what a call across the mesh looks like
// and how its failures read; reading orders looks up the users' current
// names and, in cmd/order, degrades to orders without names when the user
// service is down (a client fallback, docs/overload.md). *_gen.go files are
// written by svcgen.
package order

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/services/user"
)

// Service is the order service's API.
//
//warren:grpc
type Service interface {
	// Create places an order for an existing user. It is keyed: a retried
	// call with the same idempotency key gets the first call's order, not
	// a second order.
	//warren:keyed
	//warren:http POST /orders 201
	Create(ctx context.Context, req CreateRequest) (Order, error)
	// Get returns one order by ID, with the user's current name.
	//warren:http GET /orders/{id}
	Get(ctx context.Context, req GetRequest) (Order, error)
	// List returns orders in creation order, optionally of one user, with
	// the users' current names.
	//warren:http GET /orders
	List(ctx context.Context, req ListRequest) (ListResponse, error)
}

// Item is one line of an order.
type Item struct {
	SKU        string `json:"sku"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// Order is a placed order.
type Order struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	// UserName is the user's current name; empty when the user no longer
	// exists or the user service could not say.
	UserName   string    `json:"user_name"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	Created    time.Time `json:"created"`
}

// CreateRequest is the input of Create.
type CreateRequest struct {
	UserID string `json:"user_id"`
	Items  []Item `json:"items"`
}

// GetRequest is the input of Get.
type GetRequest struct {
	ID string `json:"id"`
}

// ListRequest is the input of List.
type ListRequest struct {
	UserID string `json:"user_id"`
	Limit  int    `json:"limit"`
	After  string `json:"after"`
}

// ListResponse is one page of orders.
type ListResponse struct {
	Orders []Order `json:"orders"`
	Next   string  `json:"next,omitempty"`
}

// Errors callers can check with errors.Is.
var (
	// ErrNotFound means no order has the ID.
	ErrNotFound = svcerr.New(svcerr.NotFound, "order_not_found", "order not found")
	// ErrInvalid means the request breaks a rule; the message says which.
	ErrInvalid = svcerr.New(svcerr.InvalidArgument, "invalid_order", "invalid order")
	// ErrUnknownUser means the order names a user the user service does
	// not know. Not worth retrying.
	ErrUnknownUser = svcerr.New(svcerr.FailedPrecondition, "unknown_user", "unknown user")
	// ErrUserServiceUnavailable means no user instance could answer, after
	// retries; the order was not placed and may be retried later.
	ErrUserServiceUnavailable = svcerr.New(svcerr.Unavailable, "user_service_unavailable", "user service unavailable")
)

// MaxIDLen is the longest order ID accepted (400 beyond it); IDs this
// service makes are 27 bytes.
const MaxIDLen = 128

// Users is what the order service needs of the user service; the
// generated *user.Client implements it, and tests can pass a fake.
type Users interface {
	Get(ctx context.Context, req user.GetRequest) (user.User, error)
}

// OrderService implements Service.
type OrderService struct {
	users Users
	names Users
	store Store
	keys  idempotency.Store
	now   func() time.Time
}

// Option configures the service.
type Option func(*OrderService)

// WithNames sets where Get and List look up the current user names
// (default: users). cmd/order passes the user client with a fallback that
// answers a user without a name when the user service is down, so reads
// degrade (orders without names) instead of failing, while Create still
// refuses to place an order for a user it cannot check.
func WithNames(names Users) Option { return func(s *OrderService) { s.names = names } }

// New returns the service.
func New(users Users, store Store, opts ...Option) *OrderService {
	keys, ok := store.(idempotency.Store)
	if !ok {
		keys = idempotency.NewMemoryStore(10 * time.Minute)
	}
	s := &OrderService{users: users, names: users, store: store, keys: keys, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

var _ Service = (*OrderService)(nil)

// Create checks the items, looks the user up and stores the order, once
// per idempotency key.
func (s *OrderService) Create(ctx context.Context, req CreateRequest) (Order, error) {
	return idempotency.Do(ctx, s.keys, "order.Create", func(ctx context.Context) (Order, error) { return s.create(ctx, req) },
		idempotency.Request(req))
}

func (s *OrderService) create(ctx context.Context, req CreateRequest) (Order, error) {
	req.UserID = strings.TrimSpace(req.UserID)
	var problems []string
	switch n := len(req.UserID); {
	case n == 0:
		problems = append(problems, "user_id must not be empty")
	case n > user.MaxIDLen:
		problems = append(problems, fmt.Sprintf("user_id is %d bytes long, at most %d are allowed", n, user.MaxIDLen))
	}
	if len(req.Items) == 0 {
		problems = append(problems, "an order needs at least one item")
	}
	var total int64
	for i, it := range req.Items {
		switch {
		case strings.TrimSpace(it.SKU) == "":
			problems = append(problems, fmt.Sprintf("item %d: sku must not be empty", i+1))
		case it.Quantity < 1 || it.Quantity > 1000:
			problems = append(problems, fmt.Sprintf("item %d (%s): quantity %d is out of range 1..1000", i+1, it.SKU, it.Quantity))
		case it.PriceCents < 0:
			problems = append(problems, fmt.Sprintf("item %d (%s): price_cents %d is negative", i+1, it.SKU, it.PriceCents))
		}
		total += int64(it.Quantity) * it.PriceCents
	}
	if len(problems) > 0 {
		return Order{}, svcerr.Errorf(svcerr.InvalidArgument, ErrInvalid.Code, "invalid order: %s", strings.Join(problems, "; "))
	}

	// An earlier attempt of this keyed call may have placed the order and
	// stopped before its answer was recorded. It is answered without
	// asking the user service: when that is down, "order not placed"
	// would be false, and a caller told so places it again, under a new
	// key — a second order.
	key, _ := idempotency.EffectKey(ctx)
	if key != "" {
		held, ok, err := s.store.Placed(ctx, key)
		switch {
		case err != nil:
			return Order{}, fmt.Errorf("create order: %w", err)
		case ok:
			return sameCall(held, Order{UserID: req.UserID, Items: req.Items})
		}
	}

	u, err := s.users.Get(ctx, user.GetRequest{ID: req.UserID})
	switch {
	case errors.Is(err, user.ErrNotFound), errors.Is(err, user.ErrInvalid):
		// The user service refused the ID itself: the caller's input, not
		// an outage.
		return Order{}, svcerr.Errorf(svcerr.FailedPrecondition, ErrUnknownUser.Code, "user %q does not exist", req.UserID)
	case err != nil && ctx.Err() != nil:
		// The caller's deadline or cancel, not an outage of user: said
		// as such (DEADLINE_EXCEEDED / 504, CANCELED / 499), so order's
		// access log and metrics do not count it as order's failure
		// (report j50c).
		return Order{}, fmt.Errorf("order not placed: %w", ctx.Err())
	case err != nil:
		// Wrap, not Errorf: the user client's error names user's instances,
		// which order's logs show and order's callers are not sent.
		return Order{}, svcerr.Wrap(svcerr.Unavailable, ErrUserServiceUnavailable.Code, "user service unavailable, order not placed", err)
	}

	o := Order{ID: newID(), UserID: u.ID, UserName: u.Name, Items: req.Items, TotalCents: total, Created: s.now().UTC()}
	// Stored once per key: an attempt stopped or killed after the write,
	// before Do recorded its answer, leaves the order for the retry to
	// answer instead of placing a second one (see package idempotency).
	o, err = s.store.Create(ctx, o, key)
	if err != nil {
		return Order{}, fmt.Errorf("create order: %w", err)
	}
	return o, nil
}

// Get returns the order with req.ID.
func (s *OrderService) Get(ctx context.Context, req GetRequest) (Order, error) {
	switch n := len(req.ID); {
	case n == 0:
		return Order{}, svcerr.Errorf(svcerr.InvalidArgument, ErrInvalid.Code, "invalid order: id must not be empty")
	case n > MaxIDLen:
		return Order{}, svcerr.Errorf(svcerr.InvalidArgument, ErrInvalid.Code, "invalid order: id is %d bytes long, at most %d are allowed", n, MaxIDLen)
	}
	o, err := s.store.Get(ctx, req.ID)
	if err != nil {
		return Order{}, fmt.Errorf("order %q: %w", req.ID, err)
	}
	orders := []Order{o}
	if err := s.fillNames(ctx, orders); err != nil {
		return Order{}, err
	}
	return orders[0], nil
}

// fillNames sets each order's UserName to the user's current name, one
// lookup per distinct user. A user that no longer exists leaves the name
// empty; a user service that cannot answer fails the read, unless the
// names lookup degrades (WithNames).
func (s *OrderService) fillNames(ctx context.Context, orders []Order) error {
	names := map[string]string{}
	for i, o := range orders {
		name, ok := names[o.UserID]
		if !ok {
			u, err := s.names.Get(ctx, user.GetRequest{ID: o.UserID})
			switch {
			case errors.Is(err, user.ErrNotFound):
			case err != nil && ctx.Err() != nil:
				return fmt.Errorf("naming the orders' users: %w", ctx.Err()) // the caller's, as in Create
			case err != nil:
				return svcerr.Wrap(svcerr.Unavailable, ErrUserServiceUnavailable.Code, "user service unavailable, cannot name the orders' users", err)
			default:
				name = u.Name
			}
			names[o.UserID] = name
		}
		orders[i].UserName = name
	}
	return nil
}

// List returns a page of orders.
func (s *OrderService) List(ctx context.Context, req ListRequest) (ListResponse, error) {
	switch {
	case req.Limit < 0 || req.Limit > 500:
		return ListResponse{}, svcerr.Errorf(svcerr.InvalidArgument, ErrInvalid.Code, "invalid order: limit %d is out of range 0..500", req.Limit)
	case req.Limit == 0:
		req.Limit = 50
	}
	orders, err := s.store.List(ctx, req.UserID, req.After, req.Limit+1)
	if err != nil {
		return ListResponse{}, fmt.Errorf("list orders: %w", err)
	}
	resp := ListResponse{Orders: orders}
	if len(orders) > req.Limit {
		resp.Orders = orders[:req.Limit]
		resp.Next = resp.Orders[req.Limit-1].ID
	}
	if resp.Orders == nil {
		resp.Orders = []Order{}
	}
	if err := s.fillNames(ctx, resp.Orders); err != nil {
		return ListResponse{}, err
	}
	return resp, nil
}
