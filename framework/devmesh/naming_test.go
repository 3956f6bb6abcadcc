package devmesh

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ignores SIGTERM like scriptDeaf, and first says which ID it was given
const scriptDeafSaysID = "#!/bin/sh\ntrap '' TERM\necho \"serving as $WARREN_ID\"\nmkdir -p \"$WARREN_DATA_DIR\" && touch \"$WARREN_DATA_DIR/up-$$\"\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"

// An instance started with its own WARREN_ID (a fault test's
// InstanceOptions.Env) is named by that ID, the one it registers under, in
// what the launcher says of it: the kill at the stop deadline, a failed
// start. They used to say service-index (alpha-2 here), a name that
// appears nowhere in the registry. Its output lines keep the
// service-index prefix: unique per process, where two processes may
// claim one ID (test/faults' duplicate-ID test tells them apart by it).
func TestInstance_NamedByTheIDItRegistersUnderInEveryMessage(t *testing.T) {
	// Restored after the mesh's own clean-up (cleanups run last first), so
	// a failing test does not wait out the full deadline there.
	old := stopTimeout
	t.Cleanup(func() { stopTimeout = old })
	stopTimeout = 2 * time.Second
	m, out := toyMeshUp(t, map[string]string{"alpha": scriptDeafSaysID}, 1)
	own, err := m.StartInstance("alpha", InstanceOptions{Env: []string{"WARREN_ID=alpha-own"}})
	if err != nil {
		t.Fatal(err)
	}
	if own.Index != 2 || own.ID() != "alpha-own" {
		t.Fatalf("instance %d with ID %q; want index 2 with ID alpha-own (its WARREN_ID)", own.Index, own.ID())
	}
	waitUp(t, m, "alpha", 2) // both have set their trap: the SIGTERM will be ignored

	// Each echoed before it marked itself up: the lines are due already.
	for _, want := range []string{"alpha-1 | serving as alpha-1", "alpha-2 | serving as alpha-own"} {
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), want); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("no line %q within 10s: the output prefix is not the process's service-index\n%s", want, out)
				break
			}
		}
	}

	// A start that fails names the ID too (no binary: exec fails).
	if _, err := m.StartInstance("nosuch", InstanceOptions{Env: []string{"WARREN_ID=nosuch-own"}}); err == nil || !strings.Contains(err.Error(), "devmesh: start nosuch-own:") {
		t.Errorf("StartInstance of a missing binary = %v; want it named by its ID (devmesh: start nosuch-own: …)", err)
	}

	err = m.Stop()
	if err == nil {
		t.Fatalf("Stop = nil; want both hung instances reported killed\n%s", out)
	}
	for _, want := range []string{"alpha-1 did not stop in time; killed", "alpha-own did not stop in time; killed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Stop = %v; want %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "alpha-2") {
		t.Errorf("Stop = %v; names alpha-own alpha-2 (service-index), a name it does not register under", err)
	}
}

// serves like scriptServe, and first says which snapshot directory it was given
const scriptSaysSnapshotDir = "#!/bin/sh\ntrap 'exit 0' TERM\necho \"snapshots in $WARREN_SNAPSHOT_DIR\"\nmkdir -p \"$WARREN_DATA_DIR\" && touch \"$WARREN_DATA_DIR/up-$$\"\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"

// docs/demo.md: an instance's snapshot directory is named by its slot
// (service-index), like its output prefix, not by its ID: two processes may
// claim one ID (test/faults' duplicate-ID test), and by ID they would write
// one directory. A guard of that choice (it passes on the code it was
// written against): the duplicate of alpha-1 gets alpha-2's directory.
func TestStartInstance_ADuplicateIDGetsASnapshotDirOfItsOwn(t *testing.T) {
	m, out := toyMeshUp(t, map[string]string{"alpha": scriptSaysSnapshotDir}, 1)
	dup, err := m.StartInstance("alpha", InstanceOptions{Env: []string{"WARREN_ID=alpha-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if dup.ID() != "alpha-1" || dup.Index != 2 {
		t.Fatalf("duplicate is %s at index %d; want ID alpha-1 at index 2", dup.ID(), dup.Index)
	}
	waitUp(t, m, "alpha", 2) // each echoed before it marked itself up
	snaps := filepath.Join(m.cfg.StateDir, "snapshots")
	for _, want := range []string{
		"alpha-1 | snapshots in " + filepath.Join(snaps, "alpha-1") + "\n",
		"alpha-2 | snapshots in " + filepath.Join(snaps, "alpha-2") + "\n",
	} {
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), want); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("no line %q within 10s: the two processes of ID alpha-1 do not each have their slot's snapshot directory\n%s", strings.TrimSpace(want), out)
				break
			}
		}
	}
}
