package httptransport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
)

type accountID uint64

// pathIntRoute echoes the path parameter {id} bound as a T.
func pathIntRoute[T ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64](rt *Router, pattern string) {
	rt.Handle(pattern, NewServer(func(_ context.Context, req any) (any, error) { return req, nil },
		func(_ context.Context, r *http.Request) (any, error) {
			var v struct {
				ID T     `json:"id"`
				N  int32 `json:"n"`
			}
			if err := DecodeQuery(r, &v); err != nil {
				return nil, err
			}
			if err := PathInt(r, "id", &v.ID); err != nil {
				return nil, err
			}
			return v, nil
		}, EncodeJSON, log.NewNopLogger()))
}

// PathInt parses with the field's own signedness and size: "-1" for a
// uint64 and out-of-range int32/uint32 values are 400, not wrapped to
// another record's ID, and every uint64 gets through (j53c finding 2).
// The 400 names the parameter and says why.
func TestPathInt_RefusesWhatTheFieldCannotHoldAndSaysWhy(t *testing.T) {
	rt := NewRouter()
	pathIntRoute[accountID](rt, "GET /u64/{id}")
	pathIntRoute[int32](rt, "GET /i32/{id}")
	pathIntRoute[uint32](rt, "GET /u32/{id}")
	pathIntRoute[int64](rt, "GET /i64/{id}")
	pathIntRoute[int](rt, "GET /int/{id}")
	pathIntRoute[uint](rt, "GET /uint/{id}")
	srv := httptest.NewServer(Handler(rt, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 10 * time.Second}

	for _, tc := range []struct {
		path   string
		status int
		want   string // the body for a 200, the error for a 400
	}{
		{"/u64/18446744073709551615", 200, `{"id":18446744073709551615,"n":0}`},
		{"/u64/-1", 400, `path parameter "id": "-1" is not a uint64`},
		{"/u64/18446744073709551616", 400, `path parameter "id": "18446744073709551616" is out of range for a uint64`},
		{"/i32/-2147483648", 200, `{"id":-2147483648,"n":0}`},
		{"/i32/2147483648", 400, `path parameter "id": "2147483648" is out of range for an int32`},
		{"/i32/4294967297", 400, `path parameter "id": "4294967297" is out of range for an int32`},
		{"/u32/4294967295", 200, `{"id":4294967295,"n":0}`},
		{"/u32/4294967298", 400, `path parameter "id": "4294967298" is out of range for a uint32`},
		{"/u32/-1", 400, `path parameter "id": "-1" is not a uint32`},
		{"/i64/-9223372036854775808", 200, `{"id":-9223372036854775808,"n":0}`},
		{"/i64/9223372036854775808", 400, `path parameter "id": "9223372036854775808" is out of range for an int64`},
		{"/int/-7", 200, `{"id":-7,"n":0}`},
		{"/int/abc", 400, `path parameter "id": "abc" is not an int`},
		{"/uint/7", 200, `{"id":7,"n":0}`},
		{"/uint/-7", 400, `path parameter "id": "-7" is not a uint`},
		{"/i32/1?n=2147483648", 400, `query parameter "n": "2147483648" is out of range for an int32`},
		{"/i32/1?n=x", 400, `query parameter "n": "x" is not an int32`},
	} {
		resp, err := hc.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := strings.TrimSpace(string(b))
		if tc.status == 400 {
			var eb ErrorBody
			if json.Unmarshal(b, &eb) == nil && eb.Code == "bad_parameter" {
				got = eb.Error
			}
		}
		if resp.StatusCode != tc.status || got != tc.want {
			t.Errorf("GET %s: %d %s; want %d %s", tc.path, resp.StatusCode, b, tc.status, tc.want)
		}
	}

	r := httptest.NewRequest("GET", "/u64/-1", nil)
	r.SetPathValue("id", "-1")
	var id uint64
	if err := PathInt(r, "id", &id); !errors.Is(err, ErrBadParameter) || id != 0 {
		t.Fatalf("PathInt(-1) into a uint64: %v, id %d; want ErrBadParameter, id untouched", err, id)
	}
}
