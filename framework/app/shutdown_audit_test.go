package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
)

// A transport that stops on its own during the grace period (its listener
// broke while clients were still being told to go elsewhere) was noticed
// by nobody: the drain found it stopped, Run returned nil and no line
// said why requests meanwhile were refused. As in phase 5 (ErrServe), the
// drain line and Run's error say so.
func TestShutdown_ATransportThatStopsDuringTheGraceIsReported(t *testing.T) {
	j := &journal{}
	echo := &dying{Server: transporttest.NewLineEcho("127.0.0.1:0"), die: make(chan struct{})}
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithServer(echo), WithGracePeriod(5*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	waitJournal(t, j, "phase:grace")
	close(echo.die)
	err = wait(t, done)
	if !errors.Is(err, ErrServe) || !strings.Contains(err.Error(), "echo") || !strings.Contains(err.Error(), "listener broke") {
		t.Fatalf("Run = %v, want ErrServe naming the echo transport and why it stopped", err)
	}
	if got := j.phaseErr("drain"); !strings.Contains(got, "listener broke") {
		t.Fatalf("drain line err=%q, want the transport's failure", got)
	}
}
