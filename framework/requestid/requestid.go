// Package requestid carries a request's correlation ID through a context,
// so the server that received X-Request-ID and every client call it makes
// log and forward the same ID.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Header is the HTTP header that carries the ID between services.
const Header = "X-Request-ID"

// MaxLen bounds an ID accepted from a peer, so a hostile header cannot bloat
// every log line.
const MaxLen = 128

type ctxKey struct{}

// NewContext returns ctx carrying id. An id that no peer would accept
// (not Valid: a service's own, from a queued message or an order
// reference) is made one (Sanitize), so that the calls made with ctx
// carry the ID its logs show: as it was, grpc-go refused to send it and
// the call failed INTERNAL, and an HTTP callee dropped it for one of its
// own. An empty id is none.
func NewContext(ctx context.Context, id string) context.Context {
	if id != "" && !Valid(id) {
		id = Sanitize(id)
	}
	return context.WithValue(ctx, ctxKey{}, id)
}

// Sanitize returns id made Valid: its first MaxLen bytes, each one that
// is not printable ASCII, or a space, replaced by '_'. An empty id stays
// empty.
func Sanitize(id string) string {
	if Valid(id) || id == "" {
		return id
	}
	b := []byte(id[:min(len(id), MaxLen)])
	for i, c := range b {
		if c <= ' ' || c > '~' {
			b[i] = '_'
		}
	}
	return string(b)
}

// FromContext returns the ID carried by ctx, if any.
func FromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(ctxKey{}).(string)
	return id, ok && id != ""
}

// New returns a fresh random ID (16 bytes, hex).
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Valid reports whether an ID received from a peer is safe to reuse:
// printable ASCII without spaces, at most MaxLen bytes.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
