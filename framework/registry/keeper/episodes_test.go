package keeper

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// lostAtOnce is a Record whose Hold ends as soon as it starts, as when the
// registry takes writes but refuses the keepalive or the watch that holds
// them (a lease kept by a member without a leader, a znode whose watch the
// ACL refuses).
type lostAtOnce struct {
	publish func(again bool) (bool, error)
	reason  error
}

func (r *lostAtOnce) Publish(_ context.Context, again bool) (bool, error) { return r.publish(again) }

func (r *lostAtOnce) Hold(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	return r.reason
}

// A record lost again as soon as it is published is published again with
// backoff, not in a loop without pause: the backoff was reset after every
// Hold, however short, so Publish and Hold alternated as fast as the
// registry answered — a lease and a write, or a read, each time. Counted,
// not timed: after the first loss (published again at once, as any loss)
// every wait is at least half of BackoffMin (25 ms), so the publishes in a
// window are at most window/25ms plus three (the first claim, the first
// loss's, one whose wait began before the window); load only makes them
// fewer. Without backoff they were hundreds of thousands.
func TestKeeper_ARecordLostAgainAtOnceIsPublishedAgainWithBackoff(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		hold error
	}{
		{"lost (etcd: a keepalive refused)", Config{LossIsFailure: true}, errors.New("keepalive of lease 7 ended")},
		{"in doubt, found in place (ZooKeeper: a watch refused)", Config{}, errors.New("watch own znode: not authenticated")},
	} {
		t.Run(c.name, func(t *testing.T) {
			const minWait = 50 * time.Millisecond
			pubs := &counter{}
			cfg := c.cfg
			cfg.BackoffMin, cfg.BackoffMax = minWait, 4*minWait
			k, _, _ := start(t, &lostAtOnce{publish: pubs.publish, reason: c.hold}, cfg)
			if err := ready(t, k); err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			waitFor(t, "three publishes", func() bool { return pubs.count() >= 3 })
			time.Sleep(time.Second)
			n, window := pubs.count(), time.Since(begin)
			if limit := int(window/(minWait/2)) + 3; n > limit {
				t.Fatalf("%d publishes in %s; at most %d with waits of at least %s between them", n, window.Round(time.Millisecond), limit, minWait/2)
			}
		})
	}
}

// A single loss is published again at once however soon after the publish
// it came (an operator deleting the record by hand, a lease revoked): only
// a second loss in a row within BackoffMax waits for the backoff. Here the
// wait would be an hour.
func TestKeeper_ALossSoonAfterThePublishIsPublishedAgainAtOnce(t *testing.T) {
	pubs := &counter{}
	rec := &script{publish: pubs.publish, hold: make(chan error, 1)}
	k, rep, _ := start(t, rec, Config{LossIsFailure: true, BackoffMin: time.Hour, BackoffMax: time.Hour})
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	rec.hold <- errors.New("lease 7 revoked")
	waitFor(t, "the record published again", func() bool {
		s, _, rereg := rep.last()
		return pubs.count() == 2 && s == registry.StateRegistered && rereg == 1
	})
}
