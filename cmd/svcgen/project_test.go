package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// TestInit_FreshModuleOutsideTheRepositoryBuildsTestsAndRunsUp is the
// promise of svcgen anywhere: in a module that is not Warren's (a
// temporary directory, Warren replaced by this checkout, the module proxy
// off), `svcgen init` and `svcgen new payment` give a project where
// go mod tidy, go vet and go test pass, and whose `make up` starts payment
// registered and ready.
func TestInit_FreshModuleOutsideTheRepositoryBuildsTestsAndRunsUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a new module and runs its mesh; skipped with -short")
	}
	checkout, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	proj := filepath.Join(t.TempDir(), "shop")
	code, out, errOut := runCLI(t, "init", "example.com/shop", "--dir", proj, "--replace", checkout)
	if code != 0 {
		t.Fatalf("svcgen init: exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range []string{"go.mod", "Makefile", "README.md", ".gitignore", "deploy/compose/compose.yaml", "deploy/compose/Dockerfile"} {
		if _, err := os.Stat(filepath.Join(proj, f)); err != nil {
			t.Errorf("init did not create %s: %v", f, err)
		}
	}
	code, out, errOut = runCLI(t, "new", "payment", "--root", proj)
	if code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "added payment to deploy/compose/compose.yaml") {
		t.Errorf("new did not add payment to the project's compose file:\n%s", out)
	}
	// The project's compose file heals as the repository's does: the
	// registries restart after a crash, and a registry outage leaves the
	// services healthy (their health check leaves "registered" out).
	compose, err := os.ReadFile(filepath.Join(proj, "deploy", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"volumes: [etcd-data:/data/etcd]\n    # Back after a crash with its data; the services keep serving from\n    # their last good set meanwhile and register again.\n    restart: unless-stopped\n",
		"ports: [\"127.0.0.1::8500\"]\n    restart: unless-stopped\n",
		`test: ["CMD", "payment", "healthcheck", "--exclude", "registered"]`,
	} {
		if !strings.Contains(string(compose), want) {
			t.Errorf("the project's compose.yaml lacks %q", want)
		}
	}
	b, err := os.ReadFile(filepath.Join(proj, "services", "payment", "client_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"github.com/warren-mesh/warren/framework/client"`) || strings.Contains(string(b), "example.com/shop/framework") {
		t.Fatalf("client_gen.go does not import the framework by its own path:\n%s", b)
	}

	// The checksum database is out of reach offline: the project starts
	// from the checkout's go.sum (same modules, same hashes), which go mod
	// tidy verifies the module cache against and prunes.
	sum, err := os.ReadFile(filepath.Join(checkout, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proj, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	// go mod tidy may write go.mod and go.sum. It also loads go.mod files
	// of the module graph that building the checkout never needed, and
	// records what the tests of dependencies import: on a fresh machine
	// the module cache lacks those (this failed there), so tidy asks the
	// module proxy, as it would for a user. With -e it goes on past a
	// test import nothing supplies, and every error it reports must be one.
	tidy(t, proj)
	goIn(t, proj, nil, "vet", "./...")
	goIn(t, proj, nil, "test", "-count=1", "./...")
	etcdAddr := makeUp(t, proj, "payment")
	byHand(t, proj, etcdAddr)
}

// byHand runs docs/svcgen.md's instance started by hand beside `make up`
// — its `go build` and `bin/payment …` lines as they stand there, PORT
// the mesh's etcd — waits until it is registered and ready, stops it
// with SIGTERM and checks that it released its registration. The line
// once passed --grpc-listen, which the HTTP-only payment of `svcgen new
// payment` refuses (exit 2, unknown flag).
func byHand(t *testing.T, proj, etcdAddr string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "svcgen.md"))
	if err != nil {
		t.Fatal(err)
	}
	var build, run []string
	for _, l := range strings.Split(string(doc), "\n") {
		switch {
		case strings.HasPrefix(l, "go build -o bin/ ./services/payment/cmd/payment"):
			build = strings.Fields(l)
		case strings.HasPrefix(l, "bin/payment --listen"):
			run = strings.Fields(strings.ReplaceAll(l, "127.0.0.1:PORT", etcdAddr))
		}
	}
	if build == nil || run == nil {
		t.Fatalf("docs/svcgen.md has no `go build -o bin/ ./services/payment/cmd/payment` and `bin/payment --listen …` lines")
	}
	goIn(t, proj, nil, build[1:]...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(proj, run[0]), run[1:]...)
	cmd.Dir = proj
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owned by byHand: ends when the instance does (ctx kills it at the latest)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(out.String(), "phase=run ready=true") {
		select {
		case err := <-exited:
			t.Fatalf("docs/svcgen.md's %s exited before it was ready: %v\n%s", strings.Join(run, " "), err, out.String())
		case <-ctx.Done():
			t.Fatalf("docs/svcgen.md's %s was not ready within 2 minutes:\n%s", strings.Join(run, " "), out.String())
		case <-tick.C:
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("the instance started by hand, on SIGTERM: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "phase=release") || !strings.Contains(out.String(), "phase=exit err=none") {
		t.Errorf("the instance started by hand did not release its registration on SIGTERM:\n%s", out.String())
	}
}

// tidy runs go mod tidy -e through the environment's module proxy and
// fails the test on any error other than a dependency's test import that
// cannot be found. The checksum database is out of reach here (and may be
// on CI machines): the checkout's go.sum covers every module the build
// uses, and what tidy adds beyond it is go.mod files and tests' modules.
func tidy(t *testing.T, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "tidy", "-e")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOSUMDB=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go mod tidy -e: %v\n%s", err, out)
	}
	// Each error is a chain "go: A imports\n\tB tested by\n\tB.test imports\n\tC: …".
	for _, chain := range strings.Split(string(out), "\ngo: ") {
		if !strings.Contains(chain, "module lookup disabled") && !strings.Contains(chain, "cannot find module") {
			continue
		}
		if !strings.Contains(chain, " tested by\n") {
			t.Fatalf("go mod tidy: an error outside the tests of dependencies:\n%s\n(all output:\n%s)", chain, out)
		}
	}
}

// goIn runs the go command in dir with the module proxy off.
func goIn(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("go %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}

var etcdLine = regexp.MustCompile(`etcd \(embedded\) listening on (127\.0\.0\.1:\d+)`)

var readyLine = regexp.MustCompile(`(?m)^(\S+)\s+\S+\s+127\.0\.0\.1:\d+\s+\S+\s+\S+\s+ready\b`) // SERVICE INSTANCE HTTP GRPC ZONE STATE

// makeUp runs the project's `make up`, waits for its summary (printed once
// every instance is registered and ready), checks that service is in it,
// and stops the mesh with SIGINT, as Ctrl-C would (when the test ends).
// It returns the address of the mesh's embedded etcd.
func makeUp(t *testing.T, dir, service string) string {
	t.Helper()
	cmd := exec.Command("make", "up")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly", "NO_COLOR=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }() // owned by makeUp: ends when make does
	var all syncbuf.Buffer                           // every line, for the stop's check
	drained := make(chan struct{})
	t.Cleanup(func() {
		// Ctrl-C in a terminal: SIGINT to the whole process group. The
		// mesh must stop in order — withdraw, drain, deregister — on that
		// one press, not take it for two (`go tool` relays every signal
		// to the tool it runs, which gets the terminal's too).
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("make up did not stop within 60 s of SIGINT")
		}
		<-drained
		if out := all.String(); !strings.Contains(out, "no registration left") || strings.Contains(out, "second signal") {
			t.Errorf("make up did not stop in order on one SIGINT to its process group:\n%s", out[max(0, len(out)-3000):])
		}
	})
	lines := make(chan string, 1024)
	go func() { // owned by makeUp: ends when the pipe closes (make exited)
		defer close(drained)
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			all.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default: // nobody reads any more; keep draining
			}
		}
		io.Copy(io.Discard, pr)
	}()
	var log strings.Builder
	var etcdAddr string
	ready := 0
	deadline := time.After(8 * time.Minute) // a cold build of the launcher and the service on a loaded machine
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("make up ended before the mesh was up:\n%s", log.String())
			}
			log.WriteString(l + "\n")
			if m := etcdLine.FindStringSubmatch(l); m != nil {
				etcdAddr = m[1]
			}
			if m := readyLine.FindStringSubmatch(l); m != nil && m[1] == service {
				ready++
			}
			if strings.Contains(l, "every instance above is registered and ready") {
				if ready == 0 {
					t.Fatalf("the mesh is up without %s ready:\n%s", service, log.String())
				}
				if etcdAddr == "" {
					t.Fatalf("make up did not say where its etcd listens:\n%s", log.String())
				}
				t.Logf("make up: %d %s instances registered and ready", ready, service)
				return etcdAddr
			}
		case <-deadline:
			t.Fatalf("make up: the mesh was not up within 8 minutes:\n%s", log.String())
		}
	}
}
