// Package jwtauth is endpoint middleware that admits a call only with a
// valid JSON Web Token, checked with golang-jwt/jwt. The token comes from
// the request's "Authorization: Bearer …" metadata (reqmeta), so it works
// on every transport that fills reqmeta. A missing or invalid token is
// svcerr.Unauthenticated (HTTP 401); RequireScope answers a token without
// the scope with svcerr.PermissionDenied (HTTP 403). Neither is retried by
// Warren's client.
//
//	auth := jwtauth.Middleware(func(*jwt.Token) (any, error) { return key, nil },
//		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("shop"))
//	e.Refund = auth(jwtauth.RequireScope("payments:refund")(e.Refund))
//
// A caller sends the token per call:
//
//	ctx = client.WithCallOptions(ctx, client.Header("Authorization", "Bearer "+tok))
package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-kit/kit/endpoint"
	"github.com/golang-jwt/jwt/v5"

	"github.com/warren-mesh/warren/framework/reqmeta"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// Codes of the errors the middleware answers.
const (
	CodeUnauthenticated = "unauthenticated"
	CodeForbidden       = "permission_denied"
)

// errNoMetadata answers a call on a server that fills no reqmeta: an
// internal error (500) whose text, for the service's log, says how to fix
// the wiring.
var errNoMetadata = errors.New("jwtauth: no request metadata in the context: serve the endpoint with httptransport.NewServer or grpctransport, " +
	"or give go-kit's server kithttp.ServerBefore(func(ctx context.Context, r *http.Request) context.Context { return reqmeta.NewContext(ctx, reqmeta.FromHTTP(r, ROUTE)) })")

type claimsKey struct{}

// Middleware parses and verifies the bearer token with keyFunc and opts
// (pin the algorithms with jwt.WithValidMethods) and puts its claims in
// the context (Claims) for the endpoint and the middleware inside it.
//
// A token must carry an expiry ("exp"): golang-jwt alone accepts one
// without, which would then be valid forever. Services that share an
// issuer should also pin their audience (jwt.WithAudience).
//
// A keyFunc's error is the token's fault (401) unless it carries an
// *svcerr.Error, whose kind the call is then answered with: a keyFunc
// that fetches keys returns svcerr.Wrap(svcerr.Unavailable, …) when its
// key source is down, so callers retry rather than drop a valid token.
func Middleware(keyFunc jwt.Keyfunc, opts ...jwt.ParserOption) endpoint.Middleware {
	parser := jwt.NewParser(append([]jwt.ParserOption{jwt.WithExpirationRequired()}, opts...)...)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			md, ok := reqmeta.FromContext(ctx)
			if !ok {
				// The server does not fill reqmeta (go-kit's own
				// kithttp.NewServer, say): a wiring mistake of this
				// service, not the caller's missing token.
				return nil, errNoMetadata
			}
			scheme, tok, ok := strings.Cut(md.Get("authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
				return nil, svcerr.New(svcerr.Unauthenticated, CodeUnauthenticated, "missing bearer token")
			}
			claims := jwt.MapClaims{}
			if _, err := parser.ParseWithClaims(tok, claims, keyFunc); err != nil {
				// A keyFunc that could not get the key and says what kind
				// of failure that is (svcerr.Wrap(svcerr.Unavailable, …)
				// for its key source down) is answered with it: the token
				// may well be valid, and "invalid token" is not retried.
				var kerr *svcerr.Error
				if errors.Is(err, jwt.ErrTokenUnverifiable) && errors.As(err, &kerr) {
					return nil, fmt.Errorf("jwtauth: verification key: %w", kerr)
				}
				return nil, svcerr.Errorf(svcerr.Unauthenticated, CodeUnauthenticated, "invalid token: %w", err)
			}
			return next(context.WithValue(ctx, claimsKey{}, claims), req)
		}
	}
}

// Claims returns the verified claims Middleware put in ctx.
func Claims(ctx context.Context) (jwt.MapClaims, bool) {
	c, ok := ctx.Value(claimsKey{}).(jwt.MapClaims)
	return c, ok
}

// RequireScope admits a call whose token (verified by Middleware, which
// must wrap it) lists scope in its "scope" claim (space-separated, or a
// JSON array).
func RequireScope(scope string) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			c, ok := Claims(ctx)
			if !ok {
				return nil, svcerr.New(svcerr.Unauthenticated, CodeUnauthenticated, "no verified token (jwtauth.Middleware must wrap RequireScope)")
			}
			if !slices.Contains(scopes(c["scope"]), scope) {
				return nil, svcerr.Errorf(svcerr.PermissionDenied, CodeForbidden, "token lacks scope %q", scope)
			}
			return next(ctx, req)
		}
	}
}

// scopes reads a "scope" claim: a space-separated string (RFC 8693) or,
// as some identity providers issue it, a JSON array of strings.
func scopes(claim any) []string {
	switch v := claim.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, s := range v {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
