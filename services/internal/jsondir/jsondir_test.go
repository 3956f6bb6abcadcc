package jsondir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

type rec struct{ N int }

func open(t *testing.T, dir string, opts ...Option) *Dir[rec] {
	t.Helper()
	d, err := Open[rec](dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDir_PutGetIDs(t *testing.T) {
	d := open(t, t.TempDir())
	for i, id := range []string{"b", "a", "c"} {
		if err := d.Put(id, rec{i}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := d.Get("a"); err != nil || got.N != 1 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := d.Get("zzz"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	ids, _ := d.IDs("a", 10)
	if len(ids) != 2 || ids[0] != "b" || ids[1] != "c" {
		t.Fatalf("IDs = %v", ids)
	}
}

// IDs that could escape the directory, that the OS refuses in a file name
// (NUL) or that are too long for one are not found (Get) or refused (Put)
// — never an I/O error a server would answer with 500.
func TestDir_HostileIDsAreNotFoundNeverIOErrors(t *testing.T) {
	d := open(t, t.TempDir())
	for _, bad := range []string{"../x", ".hidden", "", `a\b`, "\x00", "x\x00y", strings.Repeat("a", 300), "a b", "é"} {
		if _, err := d.Get(bad); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrBadID) {
			t.Errorf("Get(%.20q) = %v, want ErrNotExist and ErrBadID", bad, err)
		}
		if err := d.Put(bad, rec{}); !errors.Is(err, ErrBadID) {
			t.Errorf("Put(%.20q) = %v", bad, err)
		}
	}
	if err := d.Put(strings.Repeat("a", MaxIDLen), rec{}); err != nil {
		t.Fatalf("longest valid ID: %v", err)
	}
}

func TestDir_PutUniqueRefusesATakenKeyOfAnyLength(t *testing.T) {
	d := open(t, t.TempDir())
	long := strings.Repeat("x", 200) + "@a.io" // 205 bytes: too long to be a file name as it is
	for _, key := range []string{"k", long, "a/b\x00"} {
		if got, err := d.PutUnique(key, "id1-"+hashShort(key), rec{1}); err != nil || got.N != 1 {
			t.Fatalf("PutUnique(%.20q) = %+v, %v", key, got, err)
		}
		if held, err := d.PutUnique(key, "id2-"+hashShort(key), rec{2}); !errors.Is(err, fs.ErrExist) || held.N != 1 {
			t.Fatalf("second PutUnique(%.20q) = %+v, %v; want ErrExist and the holder", key, held, err)
		}
		if _, err := d.Get("id2-" + hashShort(key)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the refused record was written: %v", err)
		}
	}
}

func hashShort(s string) string { return filepath.Base(claimPathFor(s))[len(claimPrefix):][:8] }

func claimPathFor(key string) string { return (&Dir[rec]{}).claimPath(key) }

// A crash after the claim and before the record (simulated by deleting the
// record) must not leave the key taken by nobody: Open completes the record
// from the claim, and so does a PutUnique that runs into the claim.
func TestDir_ClaimWithoutRecordIsCompletedNotOrphaned(t *testing.T) {
	for _, how := range []string{"on open", "on conflict"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			d := open(t, dir)
			if _, err := d.PutUnique("ada@x.io", "u1", rec{7}); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, "u1.json")); err != nil {
				t.Fatal(err)
			}
			if how == "on open" {
				d = open(t, dir)
			} else if held, err := d.PutUnique("ada@x.io", "u2", rec{8}); !errors.Is(err, fs.ErrExist) || held.N != 7 {
				t.Fatalf("PutUnique over the claim = %+v, %v; want ErrExist and the claim's record", held, err)
			}
			if got, err := d.Get("u1"); err != nil || got.N != 7 {
				t.Fatalf("record of the claim = %+v, %v; want it completed", got, err)
			}
		})
	}
}

// Put syncs the data before the rename makes it visible and the directory
// after, so an acknowledged write survives a power loss whole.
func TestDir_PutSyncsFileThenDirectory(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	var synced []string
	d.sync = func(f *os.File) error {
		_, err := os.Stat(filepath.Join(dir, "r.json"))
		synced = append(synced, filepath.Base(f.Name())+" visible="+boolStr(err == nil))
		return f.Sync()
	}
	if err := d.Put("r", rec{1}); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 2 || !strings.HasPrefix(synced[0], tmpPrefix) || !strings.HasSuffix(synced[0], "visible=false") ||
		synced[1] != filepath.Base(dir)+" visible=true" {
		t.Fatalf("syncs = %q, want the temp file before the rename, then the directory", synced)
	}
	synced = nil
	if _, err := d.PutUnique("k", "r2", rec{2}); err != nil {
		t.Fatal(err)
	}
	// claim temp file, directory (claim link), record temp file, directory
	if len(synced) != 4 {
		t.Fatalf("PutUnique syncs = %q, want 4", synced)
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestDir_ListSkipsAndLogsUnreadableRecords(t *testing.T) {
	dir := t.TempDir()
	var logs syncbuf.Buffer
	d := open(t, dir, WithLogger(log.NewLogfmtLogger(&logs)))
	for i, id := range []string{"a", "b", "c", "d"} {
		if err := d.Put(id, rec{i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "b.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := d.List("", 3, nil)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != 3 || got[0].N != 0 || got[1].N != 2 || got[2].N != 3 {
		t.Fatalf("List = %+v, want a, c, d", got)
	}
	if !strings.Contains(logs.String(), "skipped unreadable record") || !strings.Contains(logs.String(), "id=b") {
		t.Fatalf("log = %q, want the skipped record named", logs.String())
	}
	odd, err := d.List("", 10, func(r rec) bool { return r.N%2 == 1 })
	if err != nil || len(odd) != 1 || odd[0].N != 3 {
		t.Fatalf("filtered List = %+v, %v", odd, err)
	}
}
