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

// TestGRPC_GeneratedConversionsRoundTrip generates testdata/grpckinds (a
// service whose messages hold every kind with a non-trivial conversion:
// []*T, map[string]*T, small integers, times in slices and maps, fields
// whose Go names protoc-gen-go renames), compiles its .proto with protoc
// in a copy of the framework, and runs roundtrip_test.go.txt there: the
// generated code must compile, carry every value as HTTP does, and refuse
// what it cannot carry (nil elements, out-of-range integers).
func TestGRPC_GeneratedConversionsRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a generated service; skipped with -short")
	}
	repo, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var tools []string
	for _, name := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		p := filepath.Join(repo, "bin", name)
		if _, err := os.Stat(p); err != nil {
			if p, err = exec.LookPath(name); err != nil {
				t.Fatalf("%s not in bin/ nor on PATH (make protoc)", name)
			}
		}
		tools = append(tools, p)
	}
	root := t.TempDir()
	copyTree(t, repo, root, "go.mod", "go.sum", "framework", "internal")
	dir := filepath.Join(root, "services", "grpckinds")
	files := readDir(t, filepath.Join("testdata", "grpckinds"))
	out, err := Generate("services/grpckinds", "grpckinds", module, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	for fn, b := range files {
		out.Files[fn] = b
	}
	test, err := os.ReadFile(filepath.Join("testdata", "grpckinds", "roundtrip_test.go.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out.Files["roundtrip_test.go"] = test
	var proto string
	for fn, b := range out.Files {
		p := filepath.Join(dir, filepath.FromSlash(fn))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(fn, ".proto") {
			proto = fn
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	run := func(dir string, name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, b)
		}
	}
	run(dir, tools[0], "-I", ".", "--plugin=protoc-gen-go="+tools[1], "--plugin=protoc-gen-go-grpc="+tools[2],
		"--go_out=.", "--go_opt=paths=source_relative", "--go-grpc_out=.", "--go-grpc_opt=paths=source_relative", proto)
	run(root, "go", "vet", "./services/grpckinds/")
	run(root, "go", "test", "-count=1", "-timeout=2m", "./services/grpckinds/")
}

// copyTree copies the named files and directories of src into dst.
func copyTree(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	for _, name := range names {
		from, to := filepath.Join(src, name), filepath.Join(dst, name)
		var err error
		if fi, serr := os.Stat(from); serr == nil && fi.IsDir() {
			err = os.CopyFS(to, os.DirFS(from))
		} else if b, rerr := os.ReadFile(from); rerr != nil {
			err = rerr
		} else {
			err = os.WriteFile(to, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
