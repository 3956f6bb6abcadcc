package devmesh

import (
	"errors"
	"testing"
)

// An instance started once Stop has begun (a fault test's Restart or
// StartInstance racing the test's cleanup) was never stopped: Stop had
// already taken its list, and the process ran on after the registry was
// gone; if it came between the signals and the registration check, Stop
// panicked on its missing exit state. Now StartInstance refuses with
// ErrStopped and starts nothing.
func TestStartInstance_AfterStopIsRefusedAndStartsNothing(t *testing.T) {
	m, out := toyMeshUp(t, map[string]string{"alpha": scriptServe}, 1)
	if err := m.Stop(); err != nil {
		t.Fatalf("Stop: %v\n%s", err, out)
	}
	in, err := m.StartInstance("alpha", InstanceOptions{})
	if in != nil {
		t.Cleanup(func() { in.cmd.Process.Kill() })
	}
	if !errors.Is(err, ErrStopped) || in != nil {
		t.Fatalf("StartInstance after Stop = %v, %v; want ErrStopped and no instance", in, err)
	}
	for _, in := range m.Instances() {
		if alive(in) {
			t.Errorf("%s (pid %d) runs after Stop", in.ID(), in.Pid())
		}
	}
}
