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

type claimsKey struct{}

// Middleware parses and verifies the bearer token with keyFunc and opts
// (pin the algorithms with jwt.WithValidMethods) and puts its claims in
// the context (Claims) for the endpoint and the middleware inside it.
func Middleware(keyFunc jwt.Keyfunc, opts ...jwt.ParserOption) endpoint.Middleware {
	parser := jwt.NewParser(opts...)
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			md, _ := reqmeta.FromContext(ctx)
			scheme, tok, ok := strings.Cut(md.Get("authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
				return nil, svcerr.New(svcerr.Unauthenticated, CodeUnauthenticated, "missing bearer token")
			}
			claims := jwt.MapClaims{}
			if _, err := parser.ParseWithClaims(tok, claims, keyFunc); err != nil {
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
// must wrap it) lists scope in its space-separated "scope" claim.
func RequireScope(scope string) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			c, ok := Claims(ctx)
			if !ok {
				return nil, svcerr.New(svcerr.Unauthenticated, CodeUnauthenticated, "no verified token (jwtauth.Middleware must wrap RequireScope)")
			}
			s, _ := c["scope"].(string)
			if !slices.Contains(strings.Fields(s), scope) {
				return nil, svcerr.Errorf(svcerr.PermissionDenied, CodeForbidden, "token lacks scope %q", scope)
			}
			return next(ctx, req)
		}
	}
}
