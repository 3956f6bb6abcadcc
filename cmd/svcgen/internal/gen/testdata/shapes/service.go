package shapes

import (
	"context"
	"time"
)

// Service exercises every route shape svcgen supports.
type Service interface {
	// Ping has no route annotation: POST /ping; it is keyed.
	//warren:keyed
	Ping(ctx context.Context, req PingRequest) (PingResponse, error)
	// Search puts every scalar kind in the query string.
	//warren:http GET /accounts/{account}/search
	Search(ctx context.Context, req SearchRequest) (SearchResponse, error)
	// Remove deletes by integer ID and may be retried.
	//warren:http DELETE /items/{id}
	//warren:idempotent
	Remove(ctx context.Context, req RemoveRequest) (Empty, error)
	// Replace puts a whole item.
	//warren:http PUT /accounts/{account}/items/{id} 202
	//warren:idempotent
	Replace(ctx context.Context, req ReplaceRequest) (Item, error)
	// GetHTTPStatus checks kebab-casing of initialisms.
	GetHTTPStatus(context.Context, Empty) (Item, error)
}

type Currency string

type Cents int64

type PingRequest struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

type PingResponse struct {
	Echo string `json:"echo"`
}

type SearchRequest struct {
	Account  string     `json:"account"`
	Query    string     `json:"q,omitempty"`
	Currency Currency   `json:"currency"`
	Min      Cents      `json:"min"`
	Limit    int        `json:"limit"`
	Offset   uint32     `json:"offset"`
	Score    float64    `json:"score"`
	Open     bool       `json:"open"`
	Tags     []string   `json:"tags"`
	IDs      []int      `json:"ids"`
	Kinds    []Currency `json:"kinds"`
	NoTag    string
	Skipped  string `json:"-"`
	private  string
}

type SearchResponse struct {
	Items []Item `json:"items"`
}

type RemoveRequest struct {
	ID uint64 `json:"id"`
}

type ReplaceRequest struct {
	Account string `json:"account"`
	ID      Cents  `json:"id"`
	Item    Item   `json:"item"`
}

type Item struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type Empty struct{}

type impl struct{}

var _ Service = impl{}

func (impl) Ping(ctx context.Context, req PingRequest) (PingResponse, error) {
	return PingResponse{}, nil
}
func (impl) Search(ctx context.Context, req SearchRequest) (SearchResponse, error) {
	return SearchResponse{}, nil
}
func (impl) Remove(ctx context.Context, req RemoveRequest) (Empty, error)  { return Empty{}, nil }
func (impl) Replace(ctx context.Context, req ReplaceRequest) (Item, error) { return Item{}, nil }
func (impl) GetHTTPStatus(ctx context.Context, req Empty) (Item, error)    { return Item{}, nil }
