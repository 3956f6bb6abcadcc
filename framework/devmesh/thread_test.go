package devmesh

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/proc"
)

// The kernel sends a child's parent-death signal when the *thread* that
// forked it ends, not the launcher (internal/proc). The launcher runs
// other processes through internal/proc, whose goroutine ends locked to
// its thread when its process exits: the edge's nginx (stopped just before
// the mesh at Ctrl-C), a Consul agent or ZooKeeper restarted under the
// mesh by a fault test. Each such end took down its thread, and any
// service forked on it was SIGKILLed: no withdraw, no drain, reported as
// "exited unexpectedly (signal: killed)".
func TestStartInstance_SurvivesTheEndOfTheThreadThatStartedIt(t *testing.T) {
	m, out := toyMeshUp(t, map[string]string{"alpha": scriptServe}, 1)
	// The plainest case: an instance started from a goroutine whose thread
	// then ends (as internal/proc's goroutines end). The runtime never ends
	// the main thread, so the start is made on another: a goroutine locked
	// to the main thread stays parked (holding it) and tries on a new one.
	started, hold := make(chan *Instance, 1), make(chan struct{})
	defer close(hold)
	var try func(left int)
	try = func(left int) {
		runtime.LockOSThread()
		if syscall.Gettid() == os.Getpid() && left > 0 {
			go try(left - 1)
			<-hold
			runtime.UnlockOSThread()
			return
		}
		// Never unlocked: the thread ends with this goroutine.
		in, err := m.StartInstance("alpha", InstanceOptions{})
		if err != nil {
			t.Error(err)
		}
		started <- in
	}
	go try(3)
	var in *Instance
	select {
	case in = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("StartInstance did not return within 30s")
	}
	if in == nil {
		return
	}
	// What the launcher does for real: processes run through internal/proc
	// (nginx, consul, zookeeper) end, and their threads with them.
	for i := 0; i < 20; i++ {
		p, err := proc.Run(exec.Command("true"))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Exited():
		case <-time.After(10 * time.Second):
			t.Fatal("true did not exit within 10s")
		}
	}
	// A parent-death SIGKILL, if sent, arrives at once; a second is plenty.
	time.Sleep(time.Second)
	for _, in := range m.Instances() {
		if !alive(in) {
			t.Errorf("%s ended (%v) while the launcher runs\n%s", in.ID(), in.Err(), out)
		}
	}
	waitUp(t, m, "alpha", 2) // both handle SIGTERM before Stop sends it
	if err := m.Stop(); err != nil {
		t.Fatalf("Stop: %v\n%s", err, out)
	}
	for _, in := range m.Instances() {
		if err := in.Err(); err != nil {
			t.Errorf("%s ended with %v, want exit 0 on SIGTERM", in.ID(), err)
		}
	}
}
