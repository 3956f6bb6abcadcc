// Package reqmeta carries a request's metadata — its headers, the peer's
// address, the transport and the route — in the context an endpoint
// receives, so endpoint middleware (an auth check, a per-tenant rate
// limit) reads them the same way whatever transport the call came in on.
//
// A transport fills it before the endpoint runs: Warren's HTTP server
// (httptransport.NewServer, which every generated NewHTTPHandler uses)
// does it for every request; over gRPC FromContext reads the call's
// incoming metadata in the same shape (FromGRPC). Keys are lower case, as
// HTTP/2 and gRPC write them.
package reqmeta

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Metadata is one request's metadata.
type Metadata struct {
	// Transport names the transport the request came in on: "http", "grpc".
	Transport string
	// Peer is the caller's address as the transport saw it (host:port).
	Peer string
	// Route is what the server matched: "GET /users/{id}" for HTTP, the
	// full method ("/user.v1.UserService/Get") for gRPC.
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
// false outside a request (a call from a test, a background job). A
// call served over gRPC has it from its incoming metadata (FromGRPC)
// unless a transport put some with NewContext: no gRPC server of Warren's
// did, and endpoint middleware failed every gRPC call (jwtauth answered a
// valid token INTERNAL).
func FromContext(ctx context.Context) (m Metadata, ok bool) {
	if m, ok = ctx.Value(key{}).(Metadata); ok {
		return m, true
	}
	return FromGRPC(ctx)
}

// FromGRPC is the metadata of the gRPC call ctx serves: its incoming
// metadata (keys lower case), the peer's address and the full method
// ("/user.v1.UserService/Get") as the route. ok is false outside a call
// a gRPC server serves.
func FromGRPC(ctx context.Context) (Metadata, bool) {
	md, ok := metadata.FromIncomingContext(ctx) // a copy: the caller may keep it
	if !ok {
		return Metadata{}, false
	}
	m := Metadata{Transport: "grpc", Header: md}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		m.Peer = p.Addr.String()
	}
	m.Route, _ = grpc.Method(ctx)
	return m, true
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
