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

func call(e func(context.Context, any) (any, error), auth string) error {
	ctx := context.Background()
	if auth != "" {
		ctx = reqmeta.NewContext(ctx, reqmeta.Metadata{Header: map[string][]string{"authorization": {auth}}})
	}
	_, err := e(ctx, nil)
	return err
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
		{"ok", "Bearer " + token(t, jwt.MapClaims{"sub": "ada", "scope": "read refund", "exp": future}, key), ""},
	} {
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
