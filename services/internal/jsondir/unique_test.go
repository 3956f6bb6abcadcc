package jsondir

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

// A PutUnique whose record was renamed into place but whose directory
// sync then failed is not acknowledged, and it leaves nothing: neither
// the record nor the claim. It used to give the key back and leave the
// record, so a second PutUnique of the key succeeded — two records for
// one unique key (two users with one email address), the first one
// reported as never written.
func TestDir_PutUniqueThatFailsAfterTheRenameLeavesNoRecord(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	dirSyncs := 0
	d.sync = func(f *os.File) error {
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			dirSyncs++
			if dirSyncs == 2 { // 1: the claim's link, 2: the record's rename
				return errors.New("injected: directory sync failed")
			}
		}
		return f.Sync()
	}
	if _, err := d.PutUnique("ada@example.com", "u-1", rec{1}); err == nil {
		t.Fatal("PutUnique succeeded though its directory sync failed")
	}
	if r, err := d.Get("u-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the record of a failed PutUnique is there: %+v, %v", r, err)
	}
	d.sync = (*os.File).Sync
	if _, err := d.PutUnique("ada@example.com", "u-2", rec{2}); err != nil {
		t.Fatalf("the key after a failed PutUnique: %v", err)
	}
	ids, err := open(t, dir).IDs("", 10)
	if err != nil || len(ids) != 1 || ids[0] != "u-2" {
		t.Fatalf("records after a failed and a good PutUnique of one key, and a restart: %v, %v; want [u-2]", ids, err)
	}
}

// Held finds the record that holds a key, and nothing for a free key.
func TestDir_HeldReturnsTheRecordHoldingAKey(t *testing.T) {
	d := open(t, t.TempDir())
	if _, err := d.Held("k"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Held of a free key: %v, want fs.ErrNotExist", err)
	}
	if _, err := d.PutUnique("k", "r-1", rec{7}); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Held("k"); err != nil || got.N != 7 {
		t.Fatalf("Held = %+v, %v; want the record {7}", got, err)
	}
}
