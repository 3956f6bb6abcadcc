// Package requestid carries a request's correlation ID through a context and
// names the HTTP header it travels in, so a server that reads the header and
// a client that writes it agree on both without depending on each other.
package requestid

import "context"

// Header is the HTTP header that carries the request ID between services.
const Header = "X-Request-ID"

// ctxKey is unexported so no other package can read or overwrite the value
// except through this package's functions.
type ctxKey struct{}

// NewContext returns a copy of ctx carrying id. An empty id is stored as is;
// FromContext then reports it as absent.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the request ID stored in ctx by NewContext. ok is false
// when there is none (or it is empty), so callers never send an empty header.
func FromContext(ctx context.Context) (id string, ok bool) {
	id, _ = ctx.Value(ctxKey{}).(string)
	return id, id != ""
}
