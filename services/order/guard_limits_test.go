package order

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/services/user"
)

// docs/demo.md, input limits: IDs are at most 128 bytes, 400
// invalid_order beyond. The overlong-ID test sends 300 bytes, so a limit
// moved by a byte passed it: a 129-byte order ID then reached the store
// (404), and a 129-byte user_id reached the user service, whose refusal
// came back as 422 unknown_user. This sends each limit and one byte
// more, with the real user service behind the order service.
func TestLimits_IDsAreAtMost128BytesExactly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := New(user.New(user.NewMemoryStore()), NewMemoryStore())
	items := []Item{{SKU: "a", Quantity: 1}}

	if _, err := s.Get(ctx, GetRequest{ID: strings.Repeat("o", 128)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("128-byte order id: %v, want order_not_found", err)
	}
	if _, err := s.Get(ctx, GetRequest{ID: strings.Repeat("o", 129)}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 128") {
		t.Errorf("129-byte order id: %v, want invalid_order naming the limit", err)
	}
	if _, err := s.Create(ctx, CreateRequest{UserID: strings.Repeat("u", 128), Items: items}); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("128-byte user_id of no user: %v, want unknown_user", err)
	}
	if _, err := s.Create(ctx, CreateRequest{UserID: strings.Repeat("u", 129), Items: items}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 128") {
		t.Errorf("129-byte user_id: %v, want invalid_order naming the limit", err)
	}
}
