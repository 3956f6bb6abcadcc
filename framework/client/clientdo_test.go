package client

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// instanceHTTP.do, which sends an attempt without http.Client, answers
// what the instance's http.Client answered for every kind of outcome a
// transport (or a user's WithRoundTripper) can give: the same error text
// and type, the same response.
func TestInstanceHTTP_DoAnswersAsHTTPClientDo(t *testing.T) {
	answer := func(status int, header http.Header, body string, withBody bool) func(*http.Request) (*http.Response, error) {
		return func(r *http.Request) (*http.Response, error) {
			resp := &http.Response{StatusCode: status, Header: header, ContentLength: int64(len(body)), Request: r}
			if withBody {
				resp.Body = io.NopCloser(strings.NewReader(body))
			}
			return resp, nil
		}
	}
	cases := []struct {
		name string
		rt   func(*http.Request) (*http.Response, error)
	}{
		{"ok", answer(200, http.Header{}, `{"n":1}`, true)},
		{"transport error", func(*http.Request) (*http.Response, error) { return nil, errors.New("boom") }},
		{"wrapped transport error", func(*http.Request) (*http.Response, error) {
			return nil, fmt.Errorf("wrapped: %w", io.ErrUnexpectedEOF)
		}},
		{"TLS answer to plaintext", func(*http.Request) (*http.Response, error) {
			return nil, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake", RecordHeader: [5]byte{'H', 'T', 'T', 'P', '/'}}
		}},
		{"other TLS record error", func(*http.Request) (*http.Response, error) {
			return nil, tls.RecordHeaderError{Msg: "bad record", RecordHeader: [5]byte{1, 2, 3, 4, 5}}
		}},
		{"response and error", func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, errors.New("both")
		}},
		{"neither response nor error", func(*http.Request) (*http.Response, error) { return nil, nil }},
		{"no body, no length", answer(204, http.Header{}, "", false)},
		{"no body, a length", answer(200, http.Header{}, "12345", false)},
		{"302 elsewhere", answer(302, http.Header{"Location": {"http://127.0.0.1:2/y"}}, "moved", true)},
		{"307 relative", answer(307, http.Header{"Location": {"/y"}}, "", true)},
		{"301 unparseable Location", answer(301, http.Header{"Location": {"http://[::1"}}, "moved", true)},
		{"308 unparseable Location", answer(308, http.Header{"Location": {"%zz"}}, "", true)},
		{"302 without Location", answer(302, http.Header{}, "moved", true)},
		{"304", answer(304, http.Header{"Location": {"http://[::1"}}, "", true)},
		// A wrapper that sent the request on elsewhere (a sidecar): the
		// error names the URL the answer came from, as Client.Do's does,
		// its password hidden.
		{"301 unparseable Location from another URL", rewritten("127.0.0.1:15001", nil)},
		{"301 unparseable Location from a URL with a password", rewritten("127.0.0.1:15001", url.UserPassword("u", "secret"))},
	}
	for _, tc := range cases {
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodHead} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				rt := rtFunc(tc.rt)
				h := &instanceHTTP{instanceShared: &instanceShared{cfg: &config{
					newTransport: DefaultTransport,
					wrapRT:       func(http.RoundTripper) http.RoundTripper { return rt },
				}}}
				hc := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				newReq := func() *http.Request {
					var body io.Reader
					if method == http.MethodPost {
						body = bytes.NewReader([]byte(`{"n":1}`))
					}
					r, err := http.NewRequest(method, "http://127.0.0.1:1/x?a=b", body)
					if err != nil {
						t.Fatal(err)
					}
					return r
				}
				want, wantErr := hc.Do(newReq())
				got, gotErr := h.do(newReq())
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
					t.Fatalf("error %v, http.Client.Do's %v", gotErr, wantErr)
				}
				if wantErr != nil {
					if fmt.Sprintf("%T", gotErr) != fmt.Sprintf("%T", wantErr) || errors.Is(wantErr, http.ErrSchemeMismatch) != errors.Is(gotErr, http.ErrSchemeMismatch) {
						t.Fatalf("error %T %v, http.Client.Do's %T %v", gotErr, gotErr, wantErr, wantErr)
					}
					return
				}
				wb, _ := io.ReadAll(want.Body)
				gb, _ := io.ReadAll(got.Body)
				if got.StatusCode != want.StatusCode || string(gb) != string(wb) {
					t.Fatalf("answer %d %q, http.Client.Do's %d %q", got.StatusCode, gb, want.StatusCode, wb)
				}
			})
		}
	}
}

// rewritten is a RoundTripper that sends the request on to host (with
// user info) and gets a 301 whose Location does not parse.
func rewritten(host string, user *url.Userinfo) func(*http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) {
		r2 := r.Clone(r.Context())
		r2.URL.Host, r2.URL.User = host, user
		return &http.Response{StatusCode: 301, Header: http.Header{"Location": {"http://[::1"}}, Body: http.NoBody, Request: r2}, nil
	}
}

// A WithRoundTripper wrapper that returns nil leaves the instance's
// http.Client with no transport of its own: it sends through net/http's
// DefaultTransport, as it did before attempts bypassed http.Client.Do,
// instead of panicking on a nil RoundTripper.
func TestInstanceHTTP_DoWithANilWrappedTransportSendsAsHTTPClientDoes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	h := &instanceHTTP{instanceShared: &instanceShared{cfg: &config{
		newTransport: DefaultTransport,
		wrapRT:       func(http.RoundTripper) http.RoundTripper { return nil },
	}}}
	r, err := http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.do(r)
	if err != nil {
		t.Fatalf("do with a nil wrapped transport: %v", err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("answer %d %q, want 200 \"ok\"", resp.StatusCode, b)
	}
}
