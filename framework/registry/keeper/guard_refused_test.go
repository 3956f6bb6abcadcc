package keeper

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// registry-zookeeper.md, Security: a registrar whose credentials are
// refused fails Register at once — "final, as etcd's refused credentials
// are" — with errors.Is(err, ErrRefused), and is not retried. Both ways a
// backend starts a Keeper must say so: Run (the first publish in the
// caller's goroutine) and Start + Wait. Dropping ErrRefused from Run's
// first-claim case passed the keeper's tests and every backend's (only
// ZooKeeper returns ErrRefused, and it uses Start).
func TestKeeper_ARefusalOnTheFirstClaimIsFinal(t *testing.T) {
	for _, how := range []string{"Run", "Start"} {
		t.Run(how, func(t *testing.T) {
			c := &counter{answers: []error{fmt.Errorf("zk: not authenticated (%w)", ErrRefused)}}
			k, _ := newKeeper(t, &script{publish: c.publish, hold: make(chan error)})
			var err error
			if how == "Run" {
				err = k.Run(runCtx(t), "register k1")
			} else {
				k.Start()
				err = k.Wait(runCtx(t), "register k1")
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("%s = %v, want ErrRefused at once", how, err)
			}
			select {
			case <-k.Done():
			case <-time.After(15 * time.Second):
				t.Fatal("the Keeper went on after a refusal")
			}
			if n := c.count(); n != 1 {
				t.Fatalf("%d publishes, want 1 (a refusal is not retried)", n)
			}
		})
	}
}
