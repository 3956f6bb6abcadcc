package jwtauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/warren-mesh/warren/framework/reqmeta"
	"github.com/warren-mesh/warren/framework/svcerr"
)

var key = []byte("test-key")

func token(t *testing.T, claims jwt.MapClaims, k []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call calls e as a Warren server would, with the request's metadata.
func call(e func(context.Context, any) (any, error), auth string) error {
	h := map[string][]string{}
	if auth != "" {
		h["authorization"] = []string{auth}
	}
	_, err := e(reqmeta.NewContext(context.Background(), reqmeta.Metadata{Header: h}), nil)
	return err
}

// A server that fills no request metadata (go-kit's own kithttp.NewServer)
// is this service's wiring mistake: an internal error whose text says how
// to fix it, not the caller's "missing bearer token" (a tester's valid
// token got 401 that way).
func TestMiddleware_NoMetadataIsAWiringErrorNotTheCallers(t *testing.T) {
	e := Middleware(func(*jwt.Token) (any, error) { return key, nil })(func(context.Context, any) (any, error) { return nil, nil })
	_, err := e(context.Background(), nil)
	if !errors.Is(err, errNoMetadata) || svcerr.KindOf(err) != svcerr.Internal {
		t.Fatalf("err = %v (kind %s); want the internal wiring error", err, svcerr.KindOf(err))
	}
}

func TestMiddleware_AdmitsOnlyValidTokensAndScopes(t *testing.T) {
	var sub string
	inner := func(ctx context.Context, _ any) (any, error) {
		c, _ := Claims(ctx)
		sub, _ = c["sub"].(string)
		return nil, nil
	}
	auth := Middleware(func(*jwt.Token) (any, error) { return key, nil }, jwt.WithValidMethods([]string{"HS256"}))
	e := auth(RequireScope("refund")(inner))
	future := time.Now().Add(time.Hour).Unix()
	for _, c := range []struct {
		name, header string
		kind         svcerr.Kind
	}{
		{"no header", "", svcerr.Unauthenticated},
		{"not bearer", "Basic abc", svcerr.Unauthenticated},
		{"garbage", "Bearer abc", svcerr.Unauthenticated},
		{"wrong key", "Bearer " + token(t, jwt.MapClaims{"sub": "a", "scope": "refund", "exp": future}, []byte("other")), svcerr.Unauthenticated},
		{"expired", "Bearer " + token(t, jwt.MapClaims{"sub": "a", "scope": "refund", "exp": time.Now().Add(-time.Hour).Unix()}, key), svcerr.Unauthenticated},
		{"no scope", "Bearer " + token(t, jwt.MapClaims{"sub": "a", "scope": "read", "exp": future}, key), svcerr.PermissionDenied},
		{"no exp", "Bearer " + token(t, jwt.MapClaims{"sub": "ada", "scope": "read refund"}, key), svcerr.Unauthenticated},
		{"ok", "Bearer " + token(t, jwt.MapClaims{"sub": "ada", "scope": "read refund", "exp": future}, key), ""},
		// The scheme is checked, not only the token after it, and it is
		// case-insensitive (RFC 7235).
		{"valid token, Basic scheme", "Basic " + token(t, jwt.MapClaims{"sub": "ada", "scope": "refund", "exp": future}, key), svcerr.Unauthenticated},
		{"ok, lower-case scheme", "bearer " + token(t, jwt.MapClaims{"sub": "ada", "scope": "refund", "exp": future}, key), ""},
		{"ok, scopes as a JSON array", "Bearer " + token(t, jwt.MapClaims{"sub": "ada", "scope": []string{"read", "refund"}, "exp": future}, key), ""},
	} {
		sub = ""
		err := call(e, c.header)
		if c.kind == "" {
			if err != nil || sub != "ada" {
				t.Errorf("%s: err = %v, sub %q; want admitted with sub ada", c.name, err, sub)
			}
			continue
		}
		var se *svcerr.Error
		if !errors.As(err, &se) || se.Kind != c.kind {
			t.Errorf("%s: err = %v, want %s", c.name, err, c.kind)
		}
	}
}
