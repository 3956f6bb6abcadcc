package user

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An address whose claim an older build wrote (an empty file: the record
// it guarded was written long ago) is refused as taken, naming the
// address: the answer used to read `"": email address already
// registered`, the address of the zero record the empty claim yields.
func TestDirStore_AddressClaimedByAnOlderBuildIsTakenAndNamed(t *testing.T) {
	dir := t.TempDir()
	const email = "old@example.com"
	sum := sha256.Sum256([]byte(email))
	if err := os.WriteFile(filepath.Join(dir, ".claim-"+hex.EncodeToString(sum[:])), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewDirStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(s).Create(context.Background(), CreateRequest{Name: "Ada", Email: email})
	if !errors.Is(err, ErrEmailTaken) || !strings.Contains(err.Error(), `"`+email+`"`) {
		t.Fatalf("Create with an address an older build claimed: %v; want ErrEmailTaken naming %q", err, email)
	}
}
