package main

import (
	"go/token"
	"slices"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
)

// protocTools are the programs compiling a .proto takes, looked up in
// the project's bin/ (where `make protoc` installs them) and then on PATH.
var protocTools = []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"}

// pbFiles are the files protoc writes for a .proto: user.proto →
// user.pb.go and user_grpc.pb.go beside it.
func pbFiles(proto string) []string {
	base := strings.TrimSuffix(proto, ".proto")
	return []string{base + ".pb.go", base + "_grpc.pb.go"}
}

// protos returns the .proto files among files, sorted by the caller.
func protos(files map[string][]byte) []string {
	var out []string
	for fn := range files {
		if strings.HasSuffix(fn, ".proto") {
			out = append(out, fn)
		}
	}
	return out
}

// needProtoc reports whether a .proto must be compiled: it changed, or a
// file protoc writes for it is missing. An unchanged .proto with its
// .pb.go files in place needs no protoc, so plain `svcgen gen` runs
// without it.
func needProtoc(dir, proto string, src, old []byte, force bool) bool {
	if force || !bytes.Equal(src, old) {
		return true
	}
	for _, pb := range pbFiles(proto) {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(pb))); err != nil {
			return true
		}
	}
	return false
}

// errMissingTool is one of protocTools found neither in bin/ nor on PATH.
type errMissingTool struct{ name, bin string }

func (e errMissingTool) Error() string {
	return fmt.Sprintf("%s not found in %s or on PATH; `make protoc` builds protoc's Go plugins into bin/ and checks for protoc itself (Debian: apt-get install protobuf-compiler libprotobuf-dev; see Warren's docs/svcgen.md, gRPC)", e.name, e.bin)
}

// findTool finds one of protocTools.
func findTool(root, name string) (string, error) {
	if p := filepath.Join(root, "bin", name); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", errMissingTool{name: name, bin: filepath.Join(root, "bin")}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runProtoc compiles one .proto (src; proto is its path relative to the
// service directory, rel that directory as messages show it) in a
// temporary directory and returns the Go files protoc wrote, by path
// relative to the service directory. Nothing of the project is touched.
func runProtoc(root, rel, proto string, src []byte) (map[string][]byte, error) {
	var tools []string
	for _, name := range protocTools {
		p, err := findTool(root, name)
		if err != nil {
			return nil, fmt.Errorf("%s/%s needs compiling: %w", rel, proto, err)
		}
		tools = append(tools, p)
	}
	tmp, err := os.MkdirTemp("", "svcgen-protoc-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	in, out := filepath.Join(tmp, "in"), filepath.Join(tmp, "out")
	src0 := filepath.Join(in, filepath.FromSlash(proto))
	if err := errors.Join(os.MkdirAll(filepath.Dir(src0), 0o755), os.MkdirAll(out, 0o755)); err != nil {
		return nil, err
	}
	if err := os.WriteFile(src0, src, 0o644); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools[0], "-I", in,
		"--plugin=protoc-gen-go="+tools[1], "--plugin=protoc-gen-go-grpc="+tools[2],
		"--go_out="+out, "--go_opt=paths=source_relative",
		"--go-grpc_out="+out, "--go-grpc_opt=paths=source_relative", proto)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("protoc %s/%s: %w\n%s(a .proto svcgen wrote that protoc refuses is a svcgen bug; please report it with your service.go)", rel, proto, err, b)
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(out, p)
		files[filepath.ToSlash(r)] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, pb := range pbFiles(proto) {
		if _, ok := files[pb]; !ok {
			return nil, fmt.Errorf("protoc %s/%s wrote no %s", rel, proto, path.Base(pb))
		}
	}
	return files, nil
}

// extraFiles completes out with what lives below the service directory:
// it reads the current content of the transports' extra files (a .proto)
// into old, refuses to overwrite one svcgen did not write, and compiles
// each .proto that needs it, adding protoc's .pb.go files to out.
//
// With skipProtoc (gen --verify without --protoc) protoc is not run: a
// .proto that changed is out of date by itself, and the .pb.go files it
// would need and that are missing are returned, to be reported as such.
func (c *cli) extraFiles(root string, t target, out *gen.Output, old map[string][]byte, force, skipProtoc bool) ([]string, error) {
	var probs gen.Problems
	for fn := range out.Files {
		if !strings.Contains(fn, "/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(t.dir, filepath.FromSlash(fn)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, err
		case !bytes.HasPrefix(b, []byte("// Code generated by svcgen")):
			probs = append(probs, gen.Problem{Pos: token.Position{Filename: t.rel + "/" + fn, Line: 1},
				Msg: "this file was not written by svcgen (no \"// Code generated by svcgen\" first line), so svcgen does not overwrite it; move it away to have svcgen generate it"})
			continue
		}
		old[fn] = b
	}
	if len(probs) > 0 {
		return nil, probs
	}
	var missing []string
	ps := protos(out.Files)
	slices.Sort(ps)
	for _, proto := range ps {
		if !needProtoc(t.dir, proto, out.Files[proto], old[proto], force) {
			continue
		}
		if skipProtoc {
			for _, pb := range pbFiles(proto) {
				if _, err := os.Stat(filepath.Join(t.dir, filepath.FromSlash(pb))); err != nil {
					missing = append(missing, pb)
				}
			}
			continue
		}
		pbs, err := runProtoc(root, t.rel, proto, out.Files[proto])
		if err != nil {
			return nil, err
		}
		for fn, b := range pbs {
			cur, err := os.ReadFile(filepath.Join(t.dir, filepath.FromSlash(fn)))
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return nil, err
			case !bytes.HasPrefix(cur, []byte("// Code generated by svcgen")):
				// protoc copies the .proto's first comment, svcgen's
				// header, into the .pb.go files: one without it was
				// compiled from a .proto of the user's.
				probs = append(probs, gen.Problem{Pos: token.Position{Filename: t.rel + "/" + fn, Line: 1},
					Msg: "this file was not compiled from svcgen's .proto (no \"// Code generated by svcgen\" first line), so svcgen does not overwrite it; move it away to have svcgen generate it"})
			default:
				old[fn] = cur
			}
			out.Files[fn] = b
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return missing, nil
}
