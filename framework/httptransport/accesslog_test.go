package httptransport

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// WithAccessLog: all logs every request, errors only the 5xx ones, off
// none (report j47c: a flood wrote 5,000 lines a second, and
// --log-level warn, the only knob, hid the recovery lines too).
func TestHandler_AccessLogModes(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	for _, c := range []struct {
		mode transport.AccessLog
		want []string // paths with an access line
	}{
		{transport.AccessAll, []string{"/ok", "/boom"}},
		{transport.AccessErrors, []string{"/boom"}},
		{transport.AccessOff, nil},
	} {
		var out syncbuf.Buffer
		srv := Handler(h, log.NewLogfmtLogger(&out), 0, WithAccessLog(c.mode))
		for _, p := range []string{"/ok", "/boom"} {
			srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
		}
		for _, p := range []string{"/ok", "/boom"} {
			logged := strings.Contains(out.String(), "msg=access method=GET path="+p+" ")
			if want := strings.Contains(strings.Join(c.want, " "), p); logged != want {
				t.Errorf("%s: %s logged %v, want %v:\n%s", c.mode, p, logged, want, out.String())
			}
		}
	}
}
