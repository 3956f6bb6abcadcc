package balancer

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/retry"
)

// cancelledWith calls t's endpoint with a context the caller cancels with
// cause while the call is out, as retry.Do does to a hedge's loser.
func cancelledWith(t *Target, cause error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	_, _ = t.Call(ctx, nil)
}

func hangUntilCancelled(ctx context.Context, _ any) (any, error) {
	<-ctx.Done()
	return nil, context.Cause(ctx)
}

// An attempt outpaced by its hedge counts as a failure of its instance
// (WithConsecutiveFailures in a row eject; it is not a timeout strike) and
// is no latency sample; a hedge cancelled because it was not needed
// records nothing, so it neither ejects nor resets the count of failures.
func TestTarget_HedgeLosersCountByWhyTheyLost(t *testing.T) {
	d := must(outlier.New(outlier.WithCooldown(time.Hour, time.Hour), outlier.WithMaxEjectionPercent(100),
		outlier.WithConsecutiveFailures(3), outlier.WithConsecutiveTimeouts(2)))
	d.NewBreaker() // others in the set: the detector always leaves one in
	d.NewBreaker()
	slow := NewCheckedTarget("slow", hangUntilCancelled, WithBreaker(d.NewBreaker()))
	cancelledWith(slow, retry.ErrOutpaced)
	cancelledWith(slow, retry.ErrOutpaced)
	if slow.Ejected() {
		t.Fatal("ejected after two outpaced attempts: they counted as timeouts")
	}
	if slow.Latency() != 0 {
		t.Errorf("an outpaced attempt became a latency sample: %s", slow.Latency())
	}
	cancelledWith(slow, retry.ErrOutpaced)
	if !slow.Ejected() {
		t.Fatal("not ejected after three outpaced attempts in a row (WithConsecutiveFailures(3))")
	}

	ok := NewCheckedTarget("ok", hangUntilCancelled, WithBreaker(d.NewBreaker()))
	cancelledWith(ok, retry.ErrOutpaced)
	cancelledWith(ok, retry.ErrOutpaced)
	for range 5 {
		cancelledWith(ok, retry.ErrHedgeUnneeded)
	}
	if ok.Ejected() {
		t.Fatal("hedges cancelled as not needed ejected the instance")
	}
	cancelledWith(ok, retry.ErrOutpaced) // the third in a row: unneeded hedges reset nothing
	if !ok.Ejected() {
		t.Fatal("unneeded hedges between outpaced attempts reset the count")
	}
}
