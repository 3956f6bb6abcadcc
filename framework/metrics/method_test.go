package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestClient_MethodDoneKeepsLatencyPerMethodAndErrorsByCode(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := NewClient(reg)
	c.MethodDone("user", "Get", "ok", 10*time.Millisecond)
	c.MethodDone("user", "Get", "user_not_found", 5*time.Millisecond)
	c.MethodDone("user", "Get", "user_not_found", 5*time.Millisecond)
	c.MethodDone("user", "List", "ok", time.Millisecond)
	if n := testutil.CollectAndCount(c.methodDur); n != 2 {
		t.Errorf("duration series = %d, want 2 (one per method)", n)
	}
	if v := testutil.ToFloat64(c.methodErrs.WithLabelValues("user", "Get", "user_not_found")); v != 2 {
		t.Errorf("Get user_not_found errors = %v, want 2", v)
	}
	if n := testutil.CollectAndCount(c.methodErrs); n != 1 {
		t.Errorf("error series = %d, want 1 (ok is not an error)", n)
	}
}
