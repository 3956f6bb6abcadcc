package user

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/httptransport"
)

// docs/demo.md, input limits: "IDs are at most 128 bytes and email
// addresses at most 254 (400 invalid_user beyond)". The hostile-input
// test sends 128 and 300 bytes, so a limit moved by a few bytes passed
// it: a 129-byte ID then reached the store (404), and a 255-byte address
// was stored. This sends each limit and one byte more.
func TestHTTP_IDAndEmailLimitsAreExact(t *testing.T) {
	h := httptransport.Handler(NewHTTPHandler(MakeEndpoints(New(NewMemoryStore())), log.NewNopLogger()), log.NewNopLogger(), 0)
	srv := httptest.NewServer(h)
	defer srv.Close()

	// An address of n bytes: 64 bytes of local part, then a domain of
	// 63-byte labels and a shorter last one before ".example".
	email := func(n int) string {
		domain := strings.Repeat(strings.Repeat("b", 63)+".", 2) + strings.Repeat("c", n-65-2*64-len(".example")) + ".example"
		return strings.Repeat("a", 64) + "@" + domain
	}
	e254, e255 := email(254), email(255)
	if len(e254) != 254 || len(e255) != 255 {
		t.Fatalf("test addresses are %d and %d bytes, want 254 and 255", len(e254), len(e255))
	}
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		code                     string // the error code, for 4xx
	}{
		{"128-byte id", "GET", "/users/" + strings.Repeat("u", 128), "", 404, "user_not_found"},
		{"129-byte id", "GET", "/users/" + strings.Repeat("u", 129), "", 400, "invalid_user"},
		{"254-byte email", "POST", "/users", `{"name":"a","email":"` + e254 + `"}`, 201, ""},
		{"255-byte email", "POST", "/users", `{"name":"b","email":"` + e255 + `"}`, 400, "invalid_user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error string `json:"error"`
				Code  string `json:"code"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("%s: body: %v", tc.name, err)
			}
			if resp.StatusCode != tc.want || body.Code != tc.code {
				t.Fatalf("%s = %d %q (%s), want %d %q", tc.name, resp.StatusCode, body.Code, body.Error, tc.want, tc.code)
			}
		})
	}
}
