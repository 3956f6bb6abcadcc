package jsondir

import (
	"errors"
	"io/fs"
	"testing"
)

type rec struct{ N int }

func TestDir_PutGetIDsClaim(t *testing.T) {
	d, err := Open[rec](t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
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
	for _, bad := range []string{"../x", ".hidden", "", `a\b`} {
		if _, err := d.Get(bad); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get(%q) = %v", bad, err)
		}
		if err := d.Put(bad, rec{}); !errors.Is(err, ErrBadID) {
			t.Errorf("Put(%q) = %v", bad, err)
		}
	}
	ids, _ := d.IDs("a", 10)
	if len(ids) != 2 || ids[0] != "b" || ids[1] != "c" {
		t.Fatalf("IDs = %v", ids)
	}
	if err := d.Claim("k"); err != nil {
		t.Fatal(err)
	}
	if err := d.Claim("k"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second claim: %v", err)
	}
	d.Release("k")
	if err := d.Claim("k"); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}
