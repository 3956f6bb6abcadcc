package reqmeta

import (
	"context"
	"net/http/httptest"
	"testing"
)

func TestFromHTTP_HeadersByLowerCaseKeyPeerAndRoute(t *testing.T) {
	r := httptest.NewRequest("GET", "http://svc/users/7", nil)
	r.Header.Set("Authorization", "Bearer abc")
	r.Header.Add("X-Tenant", "a")
	r.Header.Add("X-Tenant", "b")
	r.RemoteAddr = "127.0.0.1:5000"
	m := FromHTTP(r, "GET /users/{id}")
	ctx := NewContext(context.Background(), m)
	got, ok := FromContext(ctx)
	if !ok {
		t.Fatal("no metadata in the context")
	}
	if got.Get("authorization") != "Bearer abc" || got.Get("AUTHORIZATION") != "Bearer abc" {
		t.Errorf("Authorization = %q", got.Get("authorization"))
	}
	if v := got.Values("x-tenant"); len(v) != 2 || v[1] != "b" {
		t.Errorf("X-Tenant = %v", v)
	}
	if got.Transport != "http" || got.Peer != "127.0.0.1:5000" || got.Route != "GET /users/{id}" || got.Get(":authority") != "svc" {
		t.Errorf("metadata = %+v", got)
	}
	if _, ok := FromContext(context.Background()); ok {
		t.Error("metadata outside a request")
	}
}
