// Package reqmeta carries a request's metadata — its headers, the peer's
// address, the transport and the route — in the context an endpoint
// receives, so endpoint middleware (an auth check, a per-tenant rate
// limit) reads them the same way whatever transport the call came in on.
//
// A transport fills it before the endpoint runs: Warren's HTTP server
// (httptransport.NewServer, which every generated NewHTTPHandler uses)
// does it for every request; a gRPC server puts its incoming metadata in
// the same shape. Keys are lower case, as HTTP/2 and gRPC write them.
package reqmeta

import (
	"context"
	"net/http"
	"strings"
)

// Metadata is one request's metadata.
type Metadata struct {
	// Transport names the transport the request came in on: "http", "grpc".
	Transport string
	// Peer is the caller's address as the transport saw it (host:port).
	Peer string
	// Route is what the server matched: "GET /users/{id}" for HTTP.
	Route string
	// Header holds the request's headers (gRPC metadata), keys in lower
	// case. Use Get; do not modify it.
	Header map[string][]string
}

// Get returns the first value of key (any case), or "".
func (m Metadata) Get(key string) string {
	if v := m.Header[strings.ToLower(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key (any case).
func (m Metadata) Values(key string) []string { return m.Header[strings.ToLower(key)] }

type key struct{}

// NewContext returns ctx carrying m.
func NewContext(ctx context.Context, m Metadata) context.Context {
	return context.WithValue(ctx, key{}, m)
}

// FromContext returns the metadata of the request ctx belongs to; ok is
// false outside a request (a call from a test, a background job).
func FromContext(ctx context.Context) (m Metadata, ok bool) {
	m, ok = ctx.Value(key{}).(Metadata)
	return m, ok
}

// FromHTTP is an HTTP request's metadata; route is the pattern it matched.
func FromHTTP(r *http.Request, route string) Metadata {
	h := make(map[string][]string, len(r.Header)+1)
	for k, v := range r.Header {
		h[strings.ToLower(k)] = v
	}
	if r.Host != "" {
		h[":authority"] = []string{r.Host}
	}
	return Metadata{Transport: "http", Peer: r.RemoteAddr, Route: route, Header: h}
}
