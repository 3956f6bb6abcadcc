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

// Input a client controls never makes the service answer 500, and every
// answer is a JSON error body — on the store that keeps users in files,
// whose names have limits of their own.
func TestHTTP_HostileInputIsAClientErrorInJSON(t *testing.T) {
	store, err := NewDirStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := httptransport.Handler(NewHTTPHandler(MakeEndpoints(New(store)), log.NewNopLogger()), log.NewNopLogger(), 0)
	srv := httptest.NewServer(h)
	defer srv.Close()

	email205 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + ".ddddddd.example.io"
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"NUL id", "GET", "/users/%00", "", 404},
		{"NUL inside id", "GET", "/users/x%00y", "", 404},
		{"300-byte id", "GET", "/users/" + strings.Repeat("u", 300), "", 400},
		{"128-byte id", "GET", "/users/" + strings.Repeat("u", 128), "", 404},
		{"dot id", "GET", "/users/.claim-x", "", 404},
		{"205-byte email", "POST", "/users", `{"name":"a","email":"` + email205 + `"}`, 201},
		{"same 205-byte email", "POST", "/users", `{"name":"b","email":"` + email205 + `"}`, 409},
		{"300-byte email", "POST", "/users", `{"name":"a","email":"` + strings.Repeat("a", 64) + "@" + strings.Repeat("b", 235) + `"}`, 400},
		{"NUL cursor", "GET", "/users?after=%00", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "205-byte email" && len(email205) != 205 {
				t.Fatalf("email is %d bytes", len(email205))
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			derr := json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.want || derr != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s %.40s = %d %s (%v), want %d with a JSON body", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), derr, tc.want)
			}
		})
	}
}
