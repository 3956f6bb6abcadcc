package client

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// ejectLine returns the first log line that ejects instance, or "".
func ejectLine(logs *syncbuf.Buffer, instance string) string {
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=\"instance ejected") && strings.Contains(l, "instance="+instance+" ") {
			return l
		}
	}
	return ""
}

// callUntilEjected makes calls (errors ignored: the bad instance's are the
// point) until the log has an ejection line for instance, at most 100.
func callUntilEjected(t *testing.T, c *Client, logs *syncbuf.Buffer, instance string) string {
	t.Helper()
	for i := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
		_, _ = Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{N: i})
		cancel()
		if l := ejectLine(logs, instance); l != "" {
			return l
		}
	}
	t.Fatalf("%s not ejected after 100 calls:\n%s", instance, logs)
	return ""
}

// An ejection line says which rule ejected the instance, the error that
// did and for how long (report j57b F2: a hung instance, one answering
// 500 and a healthy one a stalled host made late read the same); the
// readmission line says how long it was out.
func TestClient_EjectionLineSaysWhyOnWhatAndForHowLong(t *testing.T) {
	t.Run("500s", func(t *testing.T) {
		bad, a, b := startBackend(t, "", nil), startBackend(t, "", nil), startBackend(t, "", nil)
		bad.mode.Store(mode500)
		logs := &syncbuf.Buffer{}
		c := newClient(t, newRegistry(t, bad.inst, a.inst, b.inst), WithBalancer(balancer.NewRoundRobin()),
			WithOutlier(outlier.WithConsecutiveFailures(3), outlier.WithCooldown(time.Minute, 2*time.Minute)),
			WithLogger(log.NewLogfmtLogger(logs)))
		l := callUntilEjected(t, c, logs, bad.inst.ID)
		addr := strings.TrimPrefix(bad.inst.Endpoints[0], "http://")
		for _, want := range []string{"reason=failures", "cooldown=1m0s", "last_error=", "500", addr} {
			if !strings.Contains(l, want) {
				t.Errorf("ejection line lacks %q:\n%s", want, l)
			}
		}
	})
	t.Run("hung", func(t *testing.T) {
		h := startHung(t)
		a, b := startBackend(t, "", nil), startBackend(t, "", nil)
		logs := &syncbuf.Buffer{}
		c := newClient(t, newRegistry(t, h.inst, a.inst, b.inst), WithBalancer(balancer.NewRoundRobin()),
			WithRetry(retry.WithPerAttemptTimeout(100*time.Millisecond), retry.WithoutHedging()),
			WithOutlier(outlier.WithCooldown(time.Minute, 2*time.Minute)),
			WithLogger(log.NewLogfmtLogger(logs)))
		l := callUntilEjected(t, c, logs, h.inst.ID)
		for _, want := range []string{"reason=timeouts", "cooldown=1m0s", "last_error="} {
			if !strings.Contains(l, want) {
				t.Errorf("ejection line lacks %q:\n%s", want, l)
			}
		}
		t.Log(l)
	})
	t.Run("readmitted", func(t *testing.T) {
		const cooldown = 50 * time.Millisecond
		bad, a, b := startBackend(t, "", nil), startBackend(t, "", nil), startBackend(t, "", nil)
		bad.mode.Store(mode500)
		logs := &syncbuf.Buffer{}
		c := newClient(t, newRegistry(t, bad.inst, a.inst, b.inst), WithBalancer(balancer.NewRoundRobin()),
			WithOutlier(outlier.WithConsecutiveFailures(3), outlier.WithCooldown(cooldown, cooldown)),
			WithLogger(log.NewLogfmtLogger(logs)))
		callUntilEjected(t, c, logs, bad.inst.ID)
		bad.mode.Store(modeOK)
		for end := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "back in rotation"); {
			if time.Now().After(end) {
				t.Fatalf("not readmitted in 10 s:\n%s", logs)
			}
			_ = get(c)(0)
			time.Sleep(5 * time.Millisecond)
		}
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "back in rotation") && !strings.Contains(l, "out_for=") {
				t.Errorf("readmission line lacks out_for:\n%s", l)
			}
		}
	})
}
