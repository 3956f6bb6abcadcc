package httptransport

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRequestTimeout_BoundsTheHandlersContext(t *testing.T) {
	var left time.Duration
	var had bool
	h := RequestTimeout()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var dl time.Time
		dl, had = r.Context().Deadline()
		left = time.Until(dl)
	}))
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set(TimeoutHeader, "1500")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !had || left <= 0 || left > 1500*time.Millisecond {
		t.Fatalf("with %s: 1500 the handler's deadline is %v away (set: %v); want within 1.5s", TimeoutHeader, left, had)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if had {
		t.Fatal("without the header the handler got a deadline")
	}
	for _, bad := range [][]string{{"abc"}, {"0"}, {"-5"}, {"1.5"}, {"3600001"}, {"10", "20"}} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header[TimeoutHeader] = bad
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid_request_timeout") {
			t.Errorf("%s: %q answered %d %s; want 400 invalid_request_timeout", TimeoutHeader, bad, w.Code, w.Body)
		}
	}
	if FormatTimeout(300*time.Microsecond) != "1" || FormatTimeout(-time.Second) != "1" || FormatTimeout(2500*time.Millisecond) != "2500" {
		t.Fatal("FormatTimeout")
	}
}
