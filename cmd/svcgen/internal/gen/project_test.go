package gen

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInit_MakeProtocNamesLibprotobufDev: a protoc without its well-known
// types (Debian's protobuf-compiler alone) cannot compile a .proto with a
// time.Time field; the project's `make protoc` says so, and which package
// to install, before building anything.
func TestInit_MakeProtocNamesLibprotobufDev(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make on PATH")
	}
	files, err := Init(InitOptions{Module: "example.com/shop", Version: "v0.4.0"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files["Makefile"]), "libprotobuf-dev") {
		t.Errorf("the Makefile does not name libprotobuf-dev")
	}
	dir, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), files["Makefile"], 0o644); err != nil {
		t.Fatal(err)
	}
	// A protoc that finds no google/protobuf/*.proto, as protobuf-compiler
	// without libprotobuf-dev.
	fake := "#!/bin/sh\necho 'google/protobuf/timestamp.proto: File not found.' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "protoc"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// GO=false: were the check to pass, the plugin installs fail at once
	// rather than download anything.
	cmd := exec.CommandContext(ctx, mk, "-s", "protoc", "GO=false")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("make protoc succeeded with a protoc that lacks the well-known types:\n%s", out)
	}
	if !strings.Contains(string(out), "cannot import google/protobuf/timestamp.proto") || !strings.Contains(string(out), "apt-get install libprotobuf-dev") {
		t.Fatalf("make protoc said:\n%s\nwant it to name timestamp.proto and libprotobuf-dev", out)
	}
	if strings.Contains(string(out), "install google.golang.org") {
		t.Errorf("make protoc went on to build the plugins:\n%s", out)
	}
}
