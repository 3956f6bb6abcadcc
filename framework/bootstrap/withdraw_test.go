package bootstrap

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A shutdown whose withdraw failed (etcd unreachable at the stop) left the
// record for its TTL yet exited 0 with phase=exit err=none (report j53a
// F2). It exits ExitWithdrawFailed, the exit line naming the withdraw; a
// clean stop still exits 0.
func TestRun_FailedWithdrawExitsWithItsOwnStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stopEtcd bool
		code     int
	}{
		{"etcd down at the stop", true, ExitWithdrawFailed},
		{"clean", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := embedetcd.Start()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			args := []string{"--registry", "etcd", "--etcd-endpoints", srv.Endpoints()[0], "--etcd-ttl", "2s",
				"--etcd-dial-timeout", "1s", "--etcd-request-timeout", "1s",
				"--listen", "127.0.0.1:0", "--grace", "0s", "--withdraw-timeout", "1s"}
			var out syncbuf.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			go func() { done <- Run(ctx, "svc", "1", args, &out, hello, WithRegistries(etcd.Backend())) }()
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(out.String(), "phase=run ready=true") {
				select {
				case code := <-done:
					t.Fatalf("Run returned %d before ready:\n%s", code, out.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("not ready within 20s:\n%s", out.String())
				}
			}
			if tc.stopEtcd {
				if err := srv.Stop(); err != nil {
					t.Fatal(err)
				}
			}
			cancel()
			var code int
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("Run did not return within 30s:\n%s", out.String())
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out.String())
			}
			exitLine := ""
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "phase=exit") {
					exitLine = l
				}
			}
			if failed := strings.Contains(exitLine, "withdraw from discovery failed"); failed != tc.stopEtcd || strings.Contains(exitLine, "err=none") == tc.stopEtcd {
				t.Fatalf("exit line %q, want it to name the withdraw failure: %v", exitLine, tc.stopEtcd)
			}
		})
	}
}
