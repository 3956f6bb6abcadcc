package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// benchSvcgen times the promise of `svcgen new`: from running it to a
// passing first `go test` of the new service (unit test and conformance
// test against embedded etcd), in a copy of the repository with the module
// cache warm, the way a developer would run it. svcgen itself is built
// beforehand and not timed.
func benchSvcgen(ctx context.Context, r *report) error {
	tmp, err := os.MkdirTemp("", "bench-svcgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "repo")
	for _, name := range []string{"go.mod", "go.sum", "framework", "internal", "templates", "cmd"} {
		if err := copyRepoTree(name, filepath.Join(root, name)); err != nil {
			return fmt.Errorf("copy the repository: %w", err)
		}
	}
	svcgen := filepath.Join(tmp, "svcgen")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", svcgen, "./cmd/svcgen").CombinedOutput(); err != nil {
		return fmt.Errorf("build svcgen: %v\n%s", err, out)
	}

	start := time.Now()
	if out, err := exec.CommandContext(ctx, svcgen, "new", "payment", "--root", root).CombinedOutput(); err != nil {
		return fmt.Errorf("svcgen new payment: %v\n%s", err, out)
	}
	newTook := time.Since(start)
	test := exec.CommandContext(ctx, "go", "test", "-count=1", "./services/payment/...")
	test.Dir = root
	test.Env = append(os.Environ(), "GOPROXY=off", "GOTOOLCHAIN=local")
	if out, err := test.CombinedOutput(); err != nil {
		return fmt.Errorf("go test ./services/payment/...: %v\n%s", err, out)
	}
	total := time.Since(start)

	const goal = 60 * time.Second
	r.judged(row{
		Suite: "svcgen", Metric: "new → passing first test", Value: total.Seconds(), Unit: "s",
		Goal: "< 60 s",
		Note: fmt.Sprintf("svcgen new %s, go test (build + unit + conformance vs embedded etcd) %s; warm module cache",
			newTook.Round(time.Millisecond), (total - newTook).Round(100*time.Millisecond)),
	}, total < goal)
	return nil
}

// copyRepoTree copies the file or directory src to dst (regular files only).
func copyRepoTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}
