package devmesh

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// Scripts that end by themselves: at once, or after a second (long enough
// for WaitReady to be polling /readyz by then, though the test does not
// depend on it).
const (
	scriptExit3      = "#!/bin/sh\nexit 3\n"
	scriptExit3Later = "#!/bin/sh\nsleep 1\nexit 3\n"
	scriptExit0      = "#!/bin/sh\nexit 0\n"
)

// The "exited" errors of the bring-up and of WaitReady formatted the
// process's exit error with %v, so a caller could not errors.As it to an
// *exec.ExitError and read the status: they wrap it now (%w), and still
// name the instance by its ID.
func TestStart_AnInstanceThatExitsFailsItWithTheExitErrorWrapped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m, out, err := toyMesh(t, ctx, map[string]string{"alpha": scriptExit3}, 2, 30*time.Second)
	if m != nil || err == nil {
		t.Fatalf("Start = %v, %v; want an error\n%s", m, err, out)
	}
	if !strings.Contains(err.Error(), "alpha-1 exited") && !strings.Contains(err.Error(), "alpha-2 exited") {
		t.Errorf("Start = %v; want it to name the instance that exited", err)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("Start = %v (%T); want errors.As to find the *exec.ExitError of exit status 3", err, errors.Unwrap(err))
	}
}

func TestWaitReady_AnInstanceThatExitsFailsItWithTheExitErrorWrapped(t *testing.T) {
	m, out := toyMeshUp(t, map[string]string{"alpha": scriptServe}, 1)
	for svc, script := range map[string]string{"three": scriptExit3, "later": scriptExit3Later, "zero": scriptExit0} {
		if err := os.WriteFile(filepath.Join(m.cfg.BinDir, svc), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, svc string
		// register lists the instance in discovery (at an address where
		// nothing answers), so WaitReady goes on to poll its /readyz.
		register bool
		wantCode int // -1: a clean exit, nothing to wrap
	}{
		{"exits 3 before it is listed", "three", false, 3},
		{"exits 3 while /readyz is polled", "later", true, 3},
		{"exits 0", "zero", false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id := tc.svc + "-own"
			in, err := m.StartInstance(tc.svc, InstanceOptions{Env: []string{"WARREN_ID=" + id}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.register {
				ri := registry.Instance{ID: id, Name: tc.svc, Endpoints: []string{"http://127.0.0.1:1"}}
				if err := m.disc.Register(ctx, ri); err != nil {
					t.Fatal(err)
				}
				defer m.disc.Deregister(context.Background(), ri)
			}
			err = m.WaitReady(ctx, in)
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("WaitReady = %v; want the exit\n%s", err, out)
			}
			if want := "devmesh: " + id + " exited: exit status"; !strings.Contains(err.Error(), want) {
				t.Errorf("WaitReady = %q; want it to contain %q", err, want)
			}
			var exitErr *exec.ExitError
			found := errors.As(err, &exitErr)
			switch {
			case tc.wantCode < 0 && found:
				t.Errorf("WaitReady = %v; wraps an *exec.ExitError after a clean exit", err)
			case tc.wantCode >= 0 && (!found || exitErr.ExitCode() != tc.wantCode):
				t.Errorf("WaitReady = %v; want errors.As to find the *exec.ExitError of exit status %d", err, tc.wantCode)
			}
		})
	}
}
