package httptransport

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// TestErrorEncoder_ResourceExhaustedSendsRetryAfterRoundedUp: a 429 tells
// the caller when to come back, never earlier than the error said.
func TestErrorEncoder_ResourceExhaustedSendsRetryAfterRoundedUp(t *testing.T) {
	for _, c := range []struct {
		after time.Duration
		want  string
	}{{1500 * time.Millisecond, "2"}, {time.Second, "1"}, {time.Millisecond, "1"}, {0, ""}} {
		w := httptest.NewRecorder()
		ErrorEncoder(log.NewNopLogger())(t.Context(), svcerr.Exhausted("rate_limited", "slow down", c.after), w)
		if w.Code != 429 || w.Header().Get("Retry-After") != c.want {
			t.Errorf("after %v: status %d, Retry-After %q; want 429 and %q", c.after, w.Code, w.Header().Get("Retry-After"), c.want)
		}
	}
	for _, k := range []struct {
		kind svcerr.Kind
		st   int
	}{{svcerr.Unauthenticated, 401}, {svcerr.PermissionDenied, 403}} {
		w := httptest.NewRecorder()
		WriteError(w, svcerr.New(k.kind, "", "no"))
		if w.Code != k.st {
			t.Errorf("%s: status %d, want %d", k.kind, w.Code, k.st)
		}
	}
}
