package config

import (
	"bytes"
	"errors"
	"io/fs"
	"testing"
)

// NameSources annotates an error met after Parse as Parse annotates its
// own, and leaves it what it is to errors.Is; a Config Parse did not make
// has nothing to add.
func TestConfig_NameSourcesAfterParse(t *testing.T) {
	t.Setenv("WARREN_SNAPSHOT_DIR", "/nowhere")
	cfg, err := Parse("user", "", backends, []string{"--tls-ca", "/ca.pem"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	base := errors.Join(errors.New(`config: --snapshot-dir "/nowhere": cannot write; --tls-ca: bad`), fs.ErrPermission)
	got := cfg.NameSources(base)
	want := "config: --snapshot-dir \"/nowhere\" (from WARREN_SNAPSHOT_DIR): cannot write; --tls-ca: bad\npermission denied"
	if got.Error() != want {
		t.Fatalf("NameSources = %q\nwant          %q", got, want)
	}
	if !errors.Is(got, fs.ErrPermission) {
		t.Fatalf("NameSources(err) is not err to errors.Is: %v", got)
	}
	if got := (Config{}).NameSources(base); got != base {
		t.Fatalf("a Config Parse did not make: NameSources = %v, want err as it is", got)
	}
}
