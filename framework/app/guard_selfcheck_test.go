package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// oncall.md, A new instance exits: a wrong --advertise ends the start
// with `self-check failed: advertised endpoint http://… did not reach
// this process (listening on …) within 5s`: the default self-check
// timeout is 5 s. The tests set their own timeout, so a changed default
// passed them.
func TestRun_DefaultSelfCheckGivesUpAfterFiveSeconds(t *testing.T) {
	a, err := New("svc", okHandler(), memory.New(), WithListen("127.0.0.1:0"), WithAdvertise("127.0.0.1:1"),
		WithLogger(&journal{}), WithGracePeriod(0), WithSignals(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = a.Run(ctx)
	if !errors.Is(err, ErrSelfCheck) || !strings.Contains(err.Error(), "did not reach this process") || !strings.Contains(err.Error(), " within 5s: ") {
		t.Fatalf("Run: %v; want the self-check failure, within 5s", err)
	}
}
