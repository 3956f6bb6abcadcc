// Package user is the demo mesh's user service: create, get and list
// users. This file is the service — the interface svcgen reads and the
// business logic — and the only one a person edits besides store.go and
// the tests; *_gen.go files are written by `svcgen gen user`.
package user

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// Service is the user service's API. Each method becomes an endpoint, an
// HTTP route (the warren:http line) and a client method.
//
//warren:grpc
type Service interface {
	// Create registers a new user. It is keyed: a retried call with the
	// same idempotency key gets the first call's user, not a second user
	// (or "email taken").
	//warren:keyed
	//warren:http POST /users 201
	Create(ctx context.Context, req CreateRequest) (User, error)
	// Get returns one user by ID.
	//warren:http GET /users/{id}
	Get(ctx context.Context, req GetRequest) (User, error)
	// List returns users in creation order, a page at a time.
	//warren:http GET /users
	List(ctx context.Context, req ListRequest) (ListResponse, error)
}

// User is a registered user.
type User struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Email   string    `json:"email"`
	Created time.Time `json:"created"`
}

// CreateRequest is the input of Create.
type CreateRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// GetRequest is the input of Get.
type GetRequest struct {
	ID string `json:"id"`
}

// ListRequest is the input of List.
type ListRequest struct {
	// Limit is the page size (default 50, at most 500).
	Limit int `json:"limit"`
	// After is the ID of the last user of the previous page.
	After string `json:"after"`
}

// ListResponse is one page of users.
type ListResponse struct {
	Users []User `json:"users"`
	// Next is the After of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// Errors callers can check with errors.Is, here and through the client.
var (
	// ErrNotFound means no user has the ID. Not worth retrying.
	ErrNotFound = svcerr.New(svcerr.NotFound, "user_not_found", "user not found")
	// ErrInvalid means the request breaks a rule; the message says which.
	ErrInvalid = svcerr.New(svcerr.InvalidArgument, "invalid_user", "invalid user")
	// ErrEmailTaken means another user has the email address.
	ErrEmailTaken = svcerr.New(svcerr.AlreadyExists, "email_taken", "email address already registered")
)

// Input limits. Longer input answers ErrInvalid (400) before it reaches a
// store, whose keys and file names have limits of their own.
const (
	// MaxIDLen is the longest user ID accepted; IDs this service makes are
	// 27 bytes.
	MaxIDLen = 128
	// MaxEmailLen is the longest email address (RFC 5321's path limit).
	MaxEmailLen = 254
)

// UserService implements Service on a Store.
type UserService struct {
	store Store
	keys  idempotency.Store
	now   func() time.Time
}

// New returns the service on store. A store that is also an
// idempotency.Store (both of this package's are) keeps the keys of Create
// beside the users; otherwise they are kept in this process's memory.
func New(store Store) *UserService {
	keys, ok := store.(idempotency.Store)
	if !ok {
		keys = idempotency.NewMemoryStore(10 * time.Minute)
	}
	return &UserService{store: store, keys: keys, now: time.Now}
}

var _ Service = (*UserService)(nil)

// Create validates and stores a new user, once per idempotency key; the
// key sent again with another request is refused (ErrKeyReused).
func (s *UserService) Create(ctx context.Context, req CreateRequest) (User, error) {
	return idempotency.Do(ctx, s.keys, "user.Create", func(ctx context.Context) (User, error) { return s.create(ctx, req) },
		idempotency.Request(req))
}

func (s *UserService) create(ctx context.Context, req CreateRequest) (User, error) {
	req.Name = strings.TrimSpace(req.Name)
	req.Email = strings.TrimSpace(req.Email)
	var problems []string
	switch n := utf8.RuneCountInString(req.Name); {
	case n == 0:
		problems = append(problems, "name must not be empty")
	case n > 100:
		problems = append(problems, fmt.Sprintf("name is %d characters long, at most 100 are allowed", n))
	}
	if req.Email == "" {
		problems = append(problems, "email must not be empty")
	} else if n := len(req.Email); n > MaxEmailLen {
		problems = append(problems, fmt.Sprintf("email is %d bytes long, at most %d are allowed", n, MaxEmailLen))
	} else if a, err := mail.ParseAddress(req.Email); err != nil || a.Address != req.Email {
		problems = append(problems, fmt.Sprintf("email %q is not an email address", req.Email))
	}
	if len(problems) > 0 {
		return User{}, invalid(problems...)
	}
	u := User{ID: newID(), Name: req.Name, Email: strings.ToLower(req.Email), Created: s.now().UTC()}
	// The key goes into the same write as the user: an attempt stopped or
	// killed after the write, before Do recorded its answer, leaves the
	// user for the retry to find and answer (see package idempotency).
	key, _ := idempotency.EffectKey(ctx)
	u, err := s.store.Create(ctx, u, key)
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// Get returns the user with req.ID.
func (s *UserService) Get(ctx context.Context, req GetRequest) (User, error) {
	switch n := len(req.ID); {
	case n == 0:
		return User{}, invalid("id must not be empty")
	case n > MaxIDLen:
		return User{}, invalid(fmt.Sprintf("id is %d bytes long, at most %d are allowed", n, MaxIDLen))
	}
	u, err := s.store.Get(ctx, req.ID)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", req.ID, err)
	}
	return u, nil
}

// List returns a page of users.
func (s *UserService) List(ctx context.Context, req ListRequest) (ListResponse, error) {
	switch {
	case req.Limit < 0 || req.Limit > 500:
		return ListResponse{}, invalid(fmt.Sprintf("limit %d is out of range 0..500", req.Limit))
	case req.Limit == 0:
		req.Limit = 50
	}
	users, err := s.store.List(ctx, req.After, req.Limit+1)
	if err != nil {
		return ListResponse{}, fmt.Errorf("list users: %w", err)
	}
	resp := ListResponse{Users: users}
	if len(users) > req.Limit {
		resp.Users = users[:req.Limit]
		resp.Next = resp.Users[req.Limit-1].ID
	}
	if resp.Users == nil {
		resp.Users = []User{}
	}
	return resp, nil
}

// invalid builds an ErrInvalid with every problem in the message.
func invalid(problems ...string) error {
	return svcerr.Errorf(svcerr.InvalidArgument, ErrInvalid.Code, "invalid user: %s", strings.Join(problems, "; "))
}
