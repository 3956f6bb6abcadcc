package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deployProject is initProject with every deploy file svcgen keeps in
// step: init writes compose.yaml; Warren's own compose.public.yaml and
// chart values (both with svcgen's markers, no service payment) are
// copied in.
func deployProject(t *testing.T) string {
	t.Helper()
	root := initProject(t)
	for _, f := range []string{"deploy/compose/compose.public.yaml", "deploy/k8s/values.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		writeTree(t, root, map[string]string{f: string(b)})
	}
	deploys, err := deployEdits(root, "payment", false)
	if err != nil || len(deploys) != len(deployFiles) {
		t.Fatalf("deploy edits: %d, %v; want one per deploy file (%d)", len(deploys), err, len(deployFiles))
	}
	return root
}

// TestNew_ADeployFileThatCannotBeReplacedPutsBackThoseThatWere (review
// s58-r2 F1): new replaces its deploy files one at a time; when the
// second or third cannot be replaced — its rename fails, or the user
// saved it while new ran — the ones already replaced get their old
// content back before services/payment goes, so no deploy file lists a
// service that is not there, and `new payment` works the next time.
// Fails without putBack in commitAll (compose.yaml keeps payment, and the
// second new is refused).
func TestNew_ADeployFileThatCannotBeReplacedPutsBackThoseThatWere(t *testing.T) {
	const mine = "# the user's line, saved while svcgen ran\n"
	for _, c := range []struct {
		name  string
		k     int  // the rename that fails (0-based)
		saved bool // it fails because the file was saved first, not in rename
	}{
		{"second rename fails", 1, false},
		{"third rename fails", 2, false},
		{"second file saved while new runs", 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := deployProject(t)
			before := tree(t, root)
			n := 0
			renameFile = func(from, to string) error {
				n++
				if n-1 == c.k && !c.saved {
					return os.ErrPermission
				}
				err := os.Rename(from, to)
				if n == c.k && c.saved { // after the rename before it
					writeTree(t, root, map[string]string{deployFiles[c.k]: before[deployFiles[c.k]] + mine})
				}
				return err
			}
			t.Cleanup(func() { renameFile = os.Rename })
			code, out, errOut := runCLI(t, "new", "payment", "--root", root)
			renameFile = os.Rename
			want := "permission denied"
			if c.saved {
				want = "changed while svcgen ran"
				before[deployFiles[c.k]] += mine
			}
			if code != exitFailed || !strings.Contains(errOut, want) || !strings.Contains(errOut, "put back as they were") {
				t.Errorf("new: exit %d\n%s%s\nwant 1, %q and the files put back", code, out, errOut, want)
			}
			sameTree(t, before, tree(t, root))
			if code, out, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
				t.Errorf("new payment again: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestNew_ADeployFileSavedAfterItsReplacementKeepsTheService: when the
// second deploy file cannot be replaced and the first was saved by the
// user after new replaced it, new does not overwrite that save to put the
// old content back; the file still lists payment, so services/payment
// stays too and the message says so. Fails when placeService removes the
// service whatever putBack did.
func TestNew_ADeployFileSavedAfterItsReplacementKeepsTheService(t *testing.T) {
	root := deployProject(t)
	const mine = "# the user's line\n"
	compose := filepath.Join(root, filepath.FromSlash(deployFiles[0]))
	n := 0
	renameFile = func(from, to string) error {
		if n++; n == 2 {
			b, err := os.ReadFile(compose)
			if err != nil {
				return err
			}
			if err := os.WriteFile(compose, append(b, mine...), 0o644); err != nil {
				return err
			}
			return os.ErrPermission
		}
		return os.Rename(from, to)
	}
	t.Cleanup(func() { renameFile = os.Rename })
	code, out, errOut := runCLI(t, "new", "payment", "--root", root)
	renameFile = os.Rename
	if code != exitFailed || !strings.Contains(errOut, "changed after svcgen replaced it") || !strings.Contains(errOut, "services/payment is kept") {
		t.Errorf("new: exit %d\n%s%s\nwant 1, the saved file named and the service kept", code, out, errOut)
	}
	b, _ := os.ReadFile(compose)
	if !strings.Contains(string(b), "payment:") || !strings.HasSuffix(string(b), mine) {
		t.Errorf("compose.yaml lost the entry or the user's save:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(root, "services", "payment", "service.go")); err != nil {
		t.Errorf("services/payment went although compose.yaml lists it: %v", err)
	}
}
