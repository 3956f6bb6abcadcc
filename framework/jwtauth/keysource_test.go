package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// keyServer serves the signing key over HTTP, as a key endpoint (JWKS) of
// an identity provider does.
func keyServer(t *testing.T, k []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(k) }))
	t.Cleanup(srv.Close)
	return srv
}

// fetchingKeyFunc gets the key from the server at *url at every call and
// says, with svcerr.Wrap, that a failed fetch is the key source's outage.
func fetchingKeyFunc(url *atomic.Pointer[string]) jwt.Keyfunc {
	hc := &http.Client{Timeout: 5 * time.Second}
	return func(*jwt.Token) (any, error) {
		resp, err := hc.Get(*url.Load())
		if err != nil {
			return nil, svcerr.Wrap(svcerr.Unavailable, "keys_unavailable", "signing keys unavailable", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, svcerr.Wrap(svcerr.Unavailable, "keys_unavailable", "signing keys unavailable", fmt.Errorf("%s: %v", resp.Status, err))
		}
		return b, nil
	}
}

// While the key source a keyFunc fetches from is down, a valid token's
// call is answered with the kind the keyFunc gave its failure
// (Unavailable: the caller may retry, another instance may have the key),
// its cause (the key server's address) kept for the logs; it used to be
// 401 "invalid token", which a caller does not retry and reads as its
// token's fault, with the dial error and address in the message. Once
// the source is back, the same token is admitted.
func TestMiddleware_KeySourceOutageIsTheKeyFuncsKindNotInvalidToken(t *testing.T) {
	up := keyServer(t, key)
	var url atomic.Pointer[string]
	u := up.URL
	url.Store(&u)
	e := Middleware(fetchingKeyFunc(&url), jwt.WithValidMethods([]string{"HS256"}))(func(context.Context, any) (any, error) { return nil, nil })
	tok := "Bearer " + token(t, jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(time.Hour).Unix()}, key)

	if err := call(e, tok); err != nil {
		t.Fatalf("with the key source up: %v", err)
	}

	up.Close() // the outage
	err := call(e, tok)
	if got := svcerr.KindOf(err); got != svcerr.Unavailable {
		t.Errorf("key source down: kind %s (%v), want %s", got, err, svcerr.Unavailable)
	}
	host := strings.TrimPrefix(u, "http://")
	if pub := svcerr.Public(err); strings.Contains(pub, host) {
		t.Errorf("the caller is sent the key server's address: %q", pub)
	}
	if !strings.Contains(fmt.Sprint(err), host) {
		t.Errorf("the log text lost the cause: %v", err)
	}

	back := keyServer(t, key) // the source is back (elsewhere)
	b := back.URL
	url.Store(&b)
	if err := call(e, tok); err != nil {
		t.Fatalf("after the key source is back: %v", err)
	}

	// A keyFunc's plain error (an unknown key ID, say) is still the
	// token's fault.
	plain := Middleware(func(*jwt.Token) (any, error) { return nil, errors.New("unknown kid") })(func(context.Context, any) (any, error) { return nil, nil })
	if got := svcerr.KindOf(call(plain, tok)); got != svcerr.Unauthenticated {
		t.Errorf("plain keyFunc error: kind %s, want %s", got, svcerr.Unauthenticated)
	}
}

// A key rotation with golang-jwt's VerificationKeySet: while the keyFunc
// offers both keys, tokens signed with either are admitted; once the old
// key is dropped, its tokens are refused (401) and the new key's still
// admitted. The middleware keeps no key of its own between calls.
func TestMiddleware_KeyRotationFollowsTheKeyFunc(t *testing.T) {
	oldKey, newKey := []byte("old-key"), []byte("new-key")
	var keys atomic.Pointer[jwt.VerificationKeySet]
	keys.Store(&jwt.VerificationKeySet{Keys: []jwt.VerificationKey{oldKey}})
	e := Middleware(func(*jwt.Token) (any, error) { return *keys.Load(), nil },
		jwt.WithValidMethods([]string{"HS256"}))(func(context.Context, any) (any, error) { return nil, nil })
	exp := time.Now().Add(time.Hour).Unix()
	oldTok := "Bearer " + token(t, jwt.MapClaims{"sub": "ada", "exp": exp}, oldKey)
	newTok := "Bearer " + token(t, jwt.MapClaims{"sub": "ada", "exp": exp}, newKey)
	check := func(phase, tok string, want svcerr.Kind) {
		t.Helper()
		err := call(e, tok)
		if got := svcerr.KindOf(err); (want == "" && err != nil) || (want != "" && got != want) {
			t.Errorf("%s: err %v (kind %s), want kind %q", phase, err, got, want)
		}
	}
	check("before: old", oldTok, "")
	check("before: new", newTok, svcerr.Unauthenticated)
	keys.Store(&jwt.VerificationKeySet{Keys: []jwt.VerificationKey{oldKey, newKey}})
	check("overlap: old", oldTok, "")
	check("overlap: new", newTok, "")
	keys.Store(&jwt.VerificationKeySet{Keys: []jwt.VerificationKey{newKey}})
	check("after: old", oldTok, svcerr.Unauthenticated)
	check("after: new", newTok, "")
}
