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

// TestInit_MakeTargetsAndIgnoresAreWhatTheDocsSay: in the project `svcgen
// init` writes, make (dry-run, -n) runs for `make test` go vet and the
// race-enabled tests, for `make gen` and `make list` svcgen's commands;
// and git ignores make up's state (.warren/) and bin/ (docs/svcgen.md, the
// init table). Mutation audit M6: kills -race dropped from make test,
// make gen running anything but svcgen gen, and either ignore line
// dropped.
func TestInit_MakeTargetsAndIgnoresAreWhatTheDocsSay(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make on PATH")
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git on PATH")
	}
	files, err := Init(InitOptions{Module: "example.com/shop", Version: "v0.4.0"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"Makefile", ".gitignore"} {
		if err := os.WriteFile(filepath.Join(dir, f), files[f], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for target, want := range map[string][]string{
		"test": {"go vet ./...", "go test -race -count=1 ./..."},
		"gen":  {"go tool svcgen gen"},
		"list": {"go tool svcgen list"},
	} {
		cmd := exec.CommandContext(ctx, mk, "-n", "-s", target, "GO=go")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", target, err, out)
		}
		if got := strings.Split(strings.TrimSpace(string(out)), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("make %s runs %q, want %q", target, got, want)
		}
	}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, gitBin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := git("init", "-q"); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	for _, p := range []string{".warren/etcd/member", "bin/svcgen"} {
		if out, err := git("check-ignore", "-q", p); err != nil {
			t.Errorf("git does not ignore %s in the new project: %v %s", p, err, out)
		}
	}
	if out, err := git("check-ignore", "-q", "services/payment/service.go"); err == nil {
		t.Errorf("git ignores services/payment/service.go: %s", out)
	}
}
