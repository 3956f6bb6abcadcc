package httptransport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// money has its own JSON form, parsed with fmt.Sscanf, which returns
// io.EOF for "0 " (no currency).
type money struct {
	Units int64
	Cur   string
}

func (m money) MarshalJSON() ([]byte, error) {
	return json.Marshal(fmt.Sprintf("%d %s", m.Units, m.Cur))
}

func (m *money) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	_, err := fmt.Sscanf(s, "%d %s", &m.Units, &m.Cur)
	return err
}

type payReq struct {
	M      money  `json:"m"`
	ID     string `json:"id"`
	Public string `json:"public"`
}

// An io.EOF returned by a field's UnmarshalJSON is a failed decode (400
// malformed_json, the handler does not run), not an empty body: the
// handler ran with the fields after it left empty and answered 200 (j53c
// finding 5). An empty or all-space body is still the zero request.
func TestDecodeBody_EOFFromAFieldsUnmarshalJSONIsMalformedNotEmpty(t *testing.T) {
	var ran atomic.Int64
	echo := func(_ context.Context, req any) (any, error) { ran.Add(1); return req, nil }
	rt := NewRouter()
	rt.Handle("POST /pay", NewServer(echo, DecodeJSON[payReq](), EncodeJSON, log.NewNopLogger()))
	rt.Handle("POST /gen", NewServer(echo, func(_ context.Context, r *http.Request) (any, error) {
		var req payReq // as a generated decoder does
		if err := DecodeBody(r, &req); err != nil {
			return nil, err
		}
		return req, nil
	}, EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(Handler(rt, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 10 * time.Second}

	for _, path := range []string{"/pay", "/gen"} {
		for _, tc := range []struct {
			body, want string
			status     int
		}{
			{`{"m":"0 ","id":"abc","public":"keep me"}`, "malformed_json", 400},
			{`{"id":"abc","m":"0 "}`, "malformed_json", 400},
			{`{"m":"5 EUR","id":"abc","public":"keep me"}`, `{"m":"5 EUR","id":"abc","public":"keep me"}`, 200},
			{``, `{"m":"0 ","id":"","public":""}`, 200},
			{" \n\t", `{"m":"0 ","id":"","public":""}`, 200},
		} {
			before := ran.Load()
			resp, err := hc.Post(srv.URL+path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := strings.TrimSpace(string(b))
			if tc.status == 400 {
				var eb ErrorBody
				_ = json.Unmarshal(b, &eb)
				got = eb.Code
			}
			ranNow := ran.Load() - before
			if resp.StatusCode != tc.status || got != tc.want || (tc.status == 400) != (ranNow == 0) {
				t.Errorf("POST %s %q: %d %s, handler ran %d times; want %d %s", path, tc.body, resp.StatusCode, b, ranNow, tc.status, tc.want)
			}
		}
	}
}
