package httptransport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
		getAndCheck(t, hc, srv.URL+tc.path, tc.status, tc.want)
	}

	r := httptest.NewRequest("GET", "/u64/-1", nil)
	r.SetPathValue("id", "-1")
	var id uint64
	if err := PathInt(r, "id", &id); !errors.Is(err, ErrBadParameter) || id != 0 {
		t.Fatalf("PathInt(-1) into a uint64: %v, id %d; want ErrBadParameter, id untouched", err, id)
	}
}

type celsius float64

// A float parameter must be finite and fit its field: ParseFloat takes
// "NaN", "Inf", "-Infinity"…, JSON cannot carry them, and an endpoint
// echoing one answered 500 from the response encoder (a decoder must
// never cause a 5xx: FuzzDecodeQueryAndPath). They are 400 bad_parameter
// naming the parameter, for float32, float64, a named float and a slice's
// element. 1e39 into a float32 is out of range, not +Inf.
func TestDecodeQuery_FloatsMustBeFiniteAndFit(t *testing.T) {
	rt := NewRouter()
	rt.Handle("GET /f", NewServer(func(_ context.Context, req any) (any, error) { return req, nil },
		func(_ context.Context, r *http.Request) (any, error) {
			var v struct {
				F32 float32   `json:"f32"`
				F64 float64   `json:"f64"`
				C   celsius   `json:"c"`
				L   []float32 `json:"l"`
			}
			if err := DecodeQuery(r, &v); err != nil {
				return nil, err
			}
			return v, nil
		}, EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(Handler(rt, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 10 * time.Second}

	type row struct {
		query  string
		status int
		want   string // the body for a 200, the error for a 400
	}
	rows := []row{
		{"f32=3.4e38&f64=1e300&c=-40.5&l=.25&l=1", 200, `{"f32":3.4e+38,"f64":1e+300,"c":-40.5,"l":[0.25,1]}`},
		// Go's spellings beyond a JSON number (r55a): what a body would take.
		{"l=0x1p-2", 400, `query parameter "l": "0x1p-2" is not a decimal number`},
		{"f64=1_000", 400, `query parameter "f64": "1_000" is not a decimal number`},
		{"c=0X1P3", 400, `query parameter "c": "0X1P3" is not a decimal number`},
		{"f32=1e39", 400, `query parameter "f32": "1e39" is out of range for a float32`},
		{"f32=-1e39", 400, `query parameter "f32": "-1e39" is out of range for a float32`},
		{"l=1&l=1e39", 400, `query parameter "l": "1e39" is out of range for a float32`},
		{"f64=1e309", 400, `query parameter "f64": "1e309" is out of range for a float64`},
		{"c=1e309", 400, `query parameter "c": "1e309" is out of range for a float64`},
		{"f64=x", 400, `query parameter "f64": "x" is not a number`},
	}
	for _, name := range []string{"f32", "f64", "c", "l"} {
		for _, s := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "inf", "Infinity", "-Infinity", "+infinity"} {
			rows = append(rows, row{name + "=" + url.QueryEscape(s), 400,
				`query parameter "` + name + `": "` + s + `" is not a finite number (JSON cannot carry NaN or infinity)`})
		}
	}
	for _, tc := range rows {
		getAndCheck(t, hc, srv.URL+"/f?"+tc.query, tc.status, tc.want)
	}
}

// Neither codec carries a string that is not UTF-8 (JSON alters it,
// protobuf refuses it): a service forwarding u-%FF over gRPC answered 500
// for the caller's bytes (report r55a N1). Path and query strings are
// refused with 400; valid text, escaped or not, passes unchanged.
func TestStringParameters_MustBeUTF8(t *testing.T) {
	rt := NewRouter()
	rt.Handle("GET /u/{id}", NewServer(func(_ context.Context, req any) (any, error) { return req, nil },
		func(_ context.Context, r *http.Request) (any, error) {
			var v struct {
				ID   string   `json:"id"`
				Name string   `json:"name"`
				Tags []string `json:"tag"`
			}
			if err := PathString(r, "id", &v.ID); err != nil {
				return nil, err
			}
			if err := DecodeQuery(r, &v); err != nil {
				return nil, err
			}
			return v, nil
		}, EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(Handler(rt, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		target string
		status int
		want   string
	}{
		{"/u/u-%C3%A9?name=Z%C3%BCrich&tag=a&tag=%E2%82%AC", 200, `{"id":"u-é","name":"Zürich","tag":["a","€"]}`},
		{"/u/u-%FF", 400, `path parameter "id": "u-\xff" is not valid UTF-8 text`},
		{"/u/u-1?name=a%C3", 400, `query parameter "name": "a\xc3" is not valid UTF-8 text`},
		{"/u/u-1?tag=ok&tag=%80", 400, `query parameter "tag": "\x80" is not valid UTF-8 text`},
	} {
		getAndCheck(t, hc, srv.URL+tc.target, tc.status, tc.want)
	}
}

// getAndCheck GETs url and checks the status and, for a 200, the body or,
// for a 400 bad_parameter, its error message.
func getAndCheck(t *testing.T, hc *http.Client, url string, status int, want string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := strings.TrimSpace(string(b))
	if status == http.StatusBadRequest {
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Code == "bad_parameter" {
			got = eb.Error
		}
	}
	if resp.StatusCode != status || got != want {
		t.Errorf("GET %s: %d %s; want %d %s", url, resp.StatusCode, b, status, want)
	}
}
