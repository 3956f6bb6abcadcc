// Package stubs has methods its implementation lacks and types that do not
// exist yet: gen appends them and nothing else.
package stubs

import "context"

type Service interface {
	Get(ctx context.Context, req GetRequest) (Thing, error)
	// Rename is new.
	//warren:http POST /things/{id}/rename
	Rename(ctx context.Context, req RenameRequest) (Thing, error)
	// Archive is new too and shares Thing.
	//warren:http GET /things/{id}/archive/{reason}
	Archive(ctx context.Context, req ArchiveRequest) (ArchiveResponse, error)
}

type GetRequest struct {
	ID string `json:"id"`
}

type Thing struct {
	ID string `json:"id"`
}

type Things struct{ store map[string]Thing }

var _ Service = (*Things)(nil)

func (t *Things) Get(ctx context.Context, req GetRequest) (Thing, error) {
	return t.store[req.ID], nil
}
