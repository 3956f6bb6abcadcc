package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-kit/kit/sd"
)

// A DELETE (like a GET) travels without a body: the server decodes the
// path and query only, so a JSON body would be sent for nobody to read.
func TestInvoke_SendsABodyOnlyWhereTheServerReadsOne(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[r.Method] = string(b) + "|" + r.Header.Get("Content-Type")
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := must(NewFromInstancer(sd.FixedInstancer{strings.TrimPrefix(srv.URL, "http://")}, "svc", WithoutOutlier()))
	defer c.Close()
	in := map[string]int{"id": 7}
	for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodOptions, http.MethodPost, http.MethodPut, http.MethodPatch} {
		if err := c.Invoke(context.Background(), m, "/x", in, nil); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	for m, want := range map[string]string{
		http.MethodGet: "|", http.MethodDelete: "|", http.MethodOptions: "|",
		http.MethodPost: `{"id":7}|application/json`, http.MethodPut: `{"id":7}|application/json`, http.MethodPatch: `{"id":7}|application/json`,
	} {
		if bodies[m] != want {
			t.Errorf("%s sent body|content-type %q, want %q", m, bodies[m], want)
		}
	}
}
