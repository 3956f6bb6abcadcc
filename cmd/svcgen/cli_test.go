package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
)

// runCLI runs svcgen with args and returns the exit code and output. gen
// does not compile what it wrote (fakeRoot has no framework to compile
// against); runChecked does.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c := &cli{stdout: &out, stderr: &errb, wd: wd, lookPath: exec.LookPath}
	code := c.run(args)
	return code, out.String(), errb.String()
}

// runChecked is runCLI as the svcgen command runs: gen type-checks the
// services it wrote.
func runChecked(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// fakeRoot is a repository with a go.mod and nothing else: enough for
// everything svcgen does short of compiling.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module github.com/warren-mesh/warren\n\ngo 1.26.8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// snapshot returns every file under dir by relative path.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}

func sameFiles(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s was removed", p)
		} else if a != b {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s was created", p)
		}
	}
}

func TestHelp_EveryCommandHasOneAndExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"new", "--help"}, {"gen", "--help"}, {"gen", "-h"}, {"list", "--help"}, {"help", "gen"}, {"help", "new"}, {"init", "--help"}, {"help", "init"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "svcgen") || strings.Count(out, "Usage") != 1 {
			t.Errorf("svcgen %v: exit %d, output %q; want exit 0 and the usage once", args, code, out)
		}
	}
}

func TestCommandLineMistakesExitTwoAndSayWhat(t *testing.T) {
	root := fakeRoot(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "Usage:"},
		{[]string{"create", "x"}, `unknown command "create"`},
		{[]string{"new"}, "missing the service name"},
		{[]string{"new", "a", "b"}, "one service at a time"},
		{[]string{"new", "pay", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"new", "pay", "--registry", "zk"}, `--registry "zk": want one of etcd, consul, zookeeper, kubernetes, memory`},
		{[]string{"new", "pay", "--port", "70000"}, "--port 70000"},
		{[]string{"new", "pay", "--methods", "Close"}, "the generated Client has a Close method"},
		{[]string{"new", "pay", "--methods", "a-b"}, `method "a-b" is not a Go identifier`},
		{[]string{"new", "pay", "--methods", "hello"}, "Hello is listed twice"},
		{[]string{"new", "Payment"}, `service name "Payment" is not valid`},
		{[]string{"new", "framework"}, `service name "framework" is reserved`},
		{[]string{"new", "internal"}, `service name "internal" is reserved`},
		{[]string{"new", "go-to"}, "which is a Go keyword"},
		{[]string{"new", "client"}, "clashes with framework/client"},
		{[]string{"list", "x"}, "list takes no arguments"},
		{[]string{"gen", "../x"}, "is not a service directory"},
	} {
		code, _, errOut := runCLI(t, append(c.args, "--root", root)...)
		if c.args == nil {
			code, _, errOut = runCLI(t)
		}
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("svcgen %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
	if files := snapshot(t, filepath.Join(root, "services")); len(files) != 0 {
		t.Errorf("files were written: %v", files)
	}
}

func TestNew_ExistingServiceIsRefusedAndLeftAlone(t *testing.T) {
	root := fakeRoot(t)
	dir := filepath.Join(root, "services", "payment")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "service.go"), []byte("package payment // mine\n"), 0o644)
	before := snapshot(t, root)
	code, _, errOut := runCLI(t, "new", "payment", "--root", root)
	if code != exitFailed || !strings.Contains(errOut, "services/payment already exists") || !strings.Contains(errOut, "svcgen gen payment") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	sameFiles(t, before, snapshot(t, root))
}

func TestNew_DryRunPrintsEveryFileAndWritesNothing(t *testing.T) {
	root := fakeRoot(t)
	code, out, errOut := runCLI(t, "new", "payment", "--dry-run", "--root", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"service.go", "endpoint_gen.go", "transport_gen.go", "client_gen.go", "service_test.go", "conformance_test.go", "cmd/payment/main.go"} {
		if !strings.Contains(out, "=== services/payment/"+f+" (would create") {
			t.Errorf("dry run does not show %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "services")); !os.IsNotExist(err) {
		t.Fatalf("dry run wrote services/: %v", err)
	}
}

func TestNew_LeavesNoTemporaryDirectory(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "fraud-check", "--root", root); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "services"))
	if len(entries) != 1 || entries[0].Name() != "fraud-check" {
		t.Fatalf("services/ holds %v", entries)
	}
	if _, err := os.Stat(filepath.Join(root, "services", "fraud-check", "cmd", "fraud-check", "main.go")); err != nil {
		t.Fatal(err)
	}
}

// addMethod inserts lines at the end of the Service interface.
func addMethod(t *testing.T, path, lines string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const end = "\n}\n\n// HelloRequest"
	if !bytes.Contains(b, []byte(end)) {
		t.Fatalf("%s: no end of the Service interface", path)
	}
	b = bytes.Replace(b, []byte(end), []byte("\n"+lines+end), 1)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGen_UnsupportedSignatureNamesItAndWritesNothing(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != 0 {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	sf := filepath.Join(root, "services", "payment", "service.go")
	src := addMethod(t, sf, "\tRefund(ctx context.Context, id string) (*RefundResponse, error)")
	line := 1 + strings.Count(string(src[:strings.Index(string(src), "\tRefund(ctx")]), "\n")
	before := snapshot(t, root)
	code, _, errOut := runCLI(t, "gen", "payment", "--root", root)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	for _, want := range []string{
		"nothing was written",
		fmt.Sprintf("services/payment/service.go:%d: Refund: request type string is not a struct", line),
		fmt.Sprintf("services/payment/service.go:%d: Refund: response type is the pointer *RefundResponse", line),
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	sameFiles(t, before, snapshot(t, root))
}

func TestGen_SecondRunChangesNothing(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != 0 {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	sf := filepath.Join(root, "services", "payment", "service.go")
	addMethod(t, sf, "\t//warren:http GET /payments/{id}\n\tStatus(ctx context.Context, req StatusRequest) (StatusResponse, error)")
	code, out, errOut := runCLI(t, "gen", "./services/payment", "--root", root)
	if code != 0 || !strings.Contains(out, "appended for you to fill in") {
		t.Fatalf("first gen: exit %d\n%s\n%s", code, out, errOut)
	}
	before := snapshot(t, root)
	code, out, errOut = runCLI(t, "gen", "--root", root)
	if code != 0 || strings.TrimSpace(out) != "services/payment: up to date" {
		t.Fatalf("second gen: exit %d\n%s\n%s", code, out, errOut)
	}
	sameFiles(t, before, snapshot(t, root))
}

func TestList_ShowsServicesMethodsAndRoutes(t *testing.T) {
	root := fakeRoot(t)
	runCLI(t, "new", "payment", "--methods", "Charge", "--root", root)
	code, out, errOut := runCLI(t, "list", "--root", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"payment", "Hello", "GET /hello/{name}", "Charge", "POST /charge", "ChargeRequest → ChargeResponse"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	// A GET route is idempotent without the annotation, as the generated
	// clients treat it; a POST one is not.
	if !regexp.MustCompile(`Hello\s+GET /hello/\{name\}\s+HelloRequest → HelloResponse\s+idempotent \(GET\)\n`).MatchString(out) ||
		!regexp.MustCompile(`ChargeRequest → ChargeResponse\n`).MatchString(out) {
		t.Errorf("list gives Hello (GET) and Charge (POST) other retry classes:\n%s", out)
	}
	// The retry marks a caller cares about, keyed among them.
	svc := filepath.Join(root, "services", "payment", "service.go")
	src, err := os.ReadFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	marked := strings.Replace(string(src), "\tCharge(ctx", "\t//warren:keyed\n\tCharge(ctx", 1)
	if marked == string(src) {
		t.Fatalf("no Charge method in service.go:\n%s", src)
	}
	os.WriteFile(svc, []byte(marked), 0o644)
	code, out, errOut = runCLI(t, "list", "--root", root)
	if code != 0 || !regexp.MustCompile(`Charge\s+POST /charge\s+ChargeRequest → ChargeResponse\s+keyed\n`).MatchString(out) {
		t.Errorf("list after //warren:keyed: exit %d\n%s%s", code, out, errOut)
	}
}

func TestInit_MistakesExitTwoAndWriteNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep"), []byte("mine"), 0o644)
	// Where a refused init would have made its project: never the source
	// tree (the default ./shop), should a broken check let one through.
	fresh := filepath.Join(t.TempDir(), "shop")
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"init"}, "missing the module path", exitUsage},
		{[]string{"init", "a", "b"}, "one module at a time", exitUsage},
		{[]string{"init", "Example..com/x", "--warren", "v0.1.0", "--dir", fresh}, `module path "Example..com/x"`, exitUsage},
		{[]string{"init", "example.com/shop", "--warren", "latest", "--dir", fresh}, `Warren version "latest": want a module version`, exitUsage},
		{[]string{"init", "example.com/shop", "--replace", filepath.Join(dir, "nowhere"), "--dir", fresh}, "no go.mod there", exitUsage},
		{[]string{"init", "example.com/shop", "--warren", "v0.1.0", "--dir", dir}, "exists and is not empty", exitFailed},
		// init makes a new directory; --root was accepted and ignored once.
		{[]string{"init", "example.com/shop", "--warren", "v0.1.0", "--dir", dir, "--root", dir}, "init takes no --root", exitUsage},
		{[]string{"init", "example.com/shop", "--warren", "v0.1.0", "--dir", dir, "-root=" + dir}, "init takes no --root", exitUsage},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("svcgen %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	sameFiles(t, map[string]string{"keep": "mine"}, snapshot(t, dir))
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused init made %s (stat: %v)", fresh, err)
	}
}

func TestInit_WritesTheProjectWithTheRequestedVersion(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	code, out, errOut := runCLI(t, "init", "example.com/shop", "--warren", "v0.4.0", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	for _, want := range []string{"module example.com/shop\n", "require github.com/warren-mesh/warren v0.4.0\n", "\tgithub.com/warren-mesh/warren/cmd/svcgen\n", "\tgithub.com/warren-mesh/warren/cmd/meshup\n"} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, gomod)
		}
	}
	if strings.Contains(string(gomod), "replace") {
		t.Errorf("go.mod has a replace without --replace:\n%s", gomod)
	}
	mk, _ := os.ReadFile(filepath.Join(dir, "Makefile"))
	if !strings.Contains(string(mk), "up:\n\t@meshup=\"$$($(GO) tool -n meshup)\"") || !strings.Contains(string(mk), "test:\n") {
		t.Errorf("Makefile has no make up / make test:\n%s", mk)
	}
	if !strings.Contains(out, "go tool svcgen new payment") {
		t.Errorf("init's hint does not say how to add a service:\n%s", out)
	}
	// go tool needs the module's go.sum, which only tidy writes.
	if tidyAt, newAt := strings.Index(out, "go mod tidy"), strings.Index(out, "go tool svcgen new"); tidyAt < 0 || tidyAt > newAt {
		t.Errorf("init's hint runs go tool svcgen before go mod tidy:\n%s", out)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("init left more than the project beside it: %v", entries)
	}
}

// TestNew_AddsTheServiceToComposeInBothProfiles runs svcgen new against a
// copy of the repository's compose files: the service appears once per
// registry profile, the files stay valid for docker-compose (when it is
// installed), and a second service with the same name is refused.
func TestNew_AddsTheServiceToComposeInBothProfiles(t *testing.T) {
	// A name the repository does not have yet: the test copies its compose
	// files, and a user who added "payment" (the README's example) must
	// not break svcgen's own tests.
	p := absentServiceName(t)
	root := fakeRoot(t)
	cdir := filepath.Join(root, "deploy", "compose")
	os.MkdirAll(cdir, 0o755)
	for _, f := range []string{"compose.yaml", "compose.public.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "compose", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(cdir, f), b, 0o644)
	}
	code, out, errOut := runCLI(t, "new", p("payment"), "--root", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"compose.yaml", "compose.public.yaml"} {
		if !strings.Contains(out, p("added payment to deploy/compose/")+f) {
			t.Errorf("output does not report %s:\n%s", f, out)
		}
	}
	compose, _ := os.ReadFile(filepath.Join(cdir, "compose.yaml"))
	for _, want := range []string{
		p("  payment:\n    <<: *service\n    profiles: [etcd]\n    command: [\"payment\"]\n    environment:\n      <<: [*env, *etcd-env]\n"),
		p("  payment-consul:\n    <<: *service\n    profiles: [consul]\n"),
		p("test: [\"CMD\", \"payment\", \"healthcheck\", \"--exclude\", \"registered\"]"),
	} {
		if !strings.Contains(string(compose), want) {
			t.Errorf("compose.yaml lacks %q", want)
		}
	}
	public, _ := os.ReadFile(filepath.Join(cdir, "compose.public.yaml"))
	if !strings.Contains(string(public), p("  payment:\n    build: *public-build\n  payment-consul:\n    build: *public-build\n")) {
		t.Errorf("compose.public.yaml lacks %s's builds:\n%s", p("payment"), public)
	}
	if dc, err := exec.LookPath("docker-compose"); err == nil {
		cmd := exec.Command(dc, "-f", "compose.yaml", "-f", "compose.public.yaml", "--profile", "etcd", "--profile", "consul", "config", "--services")
		cmd.Dir = cdir
		cmd.Env = append(os.Environ(), "WARREN_IMAGE_CONTEXT="+t.TempDir())
		got, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(got), p("payment\n")) || !strings.Contains(string(got), p("payment-consul\n")) {
			t.Errorf("docker-compose config: %v\n%s", err, got)
		}
	} else {
		t.Log("docker-compose not installed: the files' validity is not checked")
	}
	// The same name again (the service directory gone, the entries not).
	os.RemoveAll(filepath.Join(root, "services", p("payment")))
	before := snapshot(t, root)
	code, _, errOut = runCLI(t, "new", p("payment"), "--root", root)
	if code != exitFailed || !strings.Contains(errOut, p("already has a service payment")) {
		t.Errorf("second new: exit %d, stderr %q", code, errOut)
	}
	sameFiles(t, before, snapshot(t, root))
}

// TestNew_HintNamesACommandThatRuns: the "Next:" lines name svcgen as the
// user can run it: on PATH, as the module's tool, or with go run; in a
// project of the user's own that lists no tool, the binary that ran when
// it stays where it is, or `go run PKG@VERSION` for the one `go run
// PKG@VERSION` built (a bare `go run PKG` there needs go.sum entries for
// svcgen's own dependencies, which the project does not have).
func TestNew_HintNamesACommandThatRuns(t *testing.T) {
	notFound := func(string) (string, error) { return "", exec.ErrNotFound }
	found := func(string) (string, error) { return "/usr/local/bin/svcgen", nil }
	exe := func(path string) func() (string, error) { return func() (string, error) { return path, nil } }
	goRunExe := exe(filepath.Join(os.TempDir(), "go-build2841", "b001", "exe", "svcgen"))
	built := func(main, version string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Path: main, Version: version}}, true
		}
	}
	const shop = "module example.com/shop\n"
	for _, c := range []struct {
		name  string
		gomod string
		look  func(string) (string, error)
		exe   func() (string, error)
		bi    func() (*debug.BuildInfo, bool)
		want  string
	}{
		{"on PATH", shop, found, nil, nil, "then: svcgen gen payment"},
		{"a tool of the module", "module example.com/shop\n\ntool github.com/warren-mesh/warren/cmd/svcgen\n", notFound, nil, nil, "then: go tool svcgen gen payment"},
		{"Warren's repository", "module github.com/warren-mesh/warren\n", notFound, nil, nil, "then: go run ./cmd/svcgen gen payment"},
		{"elsewhere", shop, notFound, nil, nil, "then: go run github.com/warren-mesh/warren/cmd/svcgen gen payment"},
		{"elsewhere, installed off PATH", shop, notFound, exe("/home/ann/go/bin/svcgen"), built(gen.FrameworkModule, "v0.4.0"), "then: /home/ann/go/bin/svcgen gen payment"},
		{"elsewhere, installed in a directory with a space", shop, notFound, exe("/opt/my tools/svcgen"), nil, "then: '/opt/my tools/svcgen' gen payment"},
		{"elsewhere, go run PKG@VERSION", shop, notFound, goRunExe, built(gen.FrameworkModule, "v0.4.0"), "then: go run github.com/warren-mesh/warren/cmd/svcgen@v0.4.0 gen payment"},
		{"elsewhere, go run inside the project", shop, notFound, goRunExe, built("example.com/shop", "(devel)"), "then: go run github.com/warren-mesh/warren/cmd/svcgen gen payment"},
		{"elsewhere, go run of a local build", shop, notFound, goRunExe, built(gen.FrameworkModule, "v0.4.1-0.20261207101010-0123456789ab+dirty"), "then: go run github.com/warren-mesh/warren/cmd/svcgen gen payment"},
		{"elsewhere, another project's go tool", shop, notFound, exe("/home/ann/.cache/go-build/3f/3f9a0c-d/svcgen"), built("example.com/tools", "(devel)"), "then: go run github.com/warren-mesh/warren/cmd/svcgen gen payment"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			os.WriteFile(filepath.Join(root, "go.mod"), []byte(c.gomod), 0o644)
			var out, errb bytes.Buffer
			cl := &cli{stdout: &out, stderr: &errb, wd: root, lookPath: c.look, executable: c.exe, buildInfo: c.bi}
			if err := cl.new([]string{"payment"}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("hint:\n%s\nwant %q", out.String(), c.want)
			}
			// A service that does not exist is named with the same command.
			err := cl.gen([]string{"ledger"})
			want := strings.Replace(strings.TrimPrefix(c.want, "then: "), "gen payment", "new ledger", 1)
			if err == nil || !strings.Contains(err.Error(), "`"+want+"`") {
				t.Errorf("gen of a missing service: %v; want it to suggest `%s`", err, want)
			}
		})
	}
}

// TestGen_KeepsComposeInStep: a service missing from a compose file with
// svcgen's marker (added by hand, or before the marker existed) is added by
// gen; a second gen changes nothing.
func TestGen_KeepsComposeInStep(t *testing.T) {
	// A name the repository does not have yet: the test copies its compose
	// files, and a user who added "payment" (the README's example) must
	// not break svcgen's own tests.
	p := absentServiceName(t)
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", p("payment"), "--root", root); code != 0 {
		t.Fatalf("new: %s", errOut)
	}
	cdir := filepath.Join(root, "deploy", "compose")
	os.MkdirAll(cdir, 0o755)
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cdir, "compose.yaml"), b, 0o644)
	code, out, errOut := runCLI(t, "gen", "--root", root)
	if code != 0 || !strings.Contains(out, p("added payment to deploy/compose/compose.yaml")) {
		t.Fatalf("gen: exit %d\n%s%s", code, out, errOut)
	}
	got, _ := os.ReadFile(filepath.Join(cdir, "compose.yaml"))
	if !strings.Contains(string(got), p("  payment:\n")) || !strings.Contains(string(got), p("  payment-consul:\n")) {
		t.Fatal(p("compose.yaml lacks payment after gen"))
	}
	before := snapshot(t, root)
	if code, out, _ := runCLI(t, "gen", "--root", root); code != 0 || strings.Contains(out, "added") {
		t.Fatalf("second gen: exit %d\n%s", code, out)
	}
	sameFiles(t, before, snapshot(t, root))
}

// absentServiceName returns a func that puts, in place of "payment", a
// service name that neither services/ nor the repository's compose files
// have.
func absentServiceName(t *testing.T) func(string) string {
	t.Helper()
	compose, err := os.ReadFile(filepath.Join("..", "..", "deploy", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		name := "payment"
		if i > 0 {
			name = fmt.Sprintf("payment%d", i)
		}
		_, statErr := os.Stat(filepath.Join("..", "..", "services", name))
		if os.IsNotExist(statErr) && !strings.Contains(string(compose), "  "+name+":") {
			return func(s string) string { return strings.ReplaceAll(s, "payment", name) }
		}
	}
	t.Fatal("no free service name among payment, payment1 … payment99")
	return nil
}

// TestNew_GRPCWithoutProtocNamesMakeProtocAsTheNextStep: in a fresh
// project `svcgen new NAME --grpc` needs protoc and its plugins; the
// error says to run make protoc and then the command again, and nothing
// is written.
func TestNew_GRPCWithoutProtocNamesMakeProtocAsTheNextStep(t *testing.T) {
	root := fakeRoot(t)
	t.Setenv("PATH", t.TempDir()) // no protoc, no plugins
	before := snapshot(t, root)
	code, _, errOut := runCLI(t, "new", "inventory", "--grpc", "--root", root)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, errOut)
	}
	for _, want := range []string{"protoc is not in " + filepath.Join(root, "bin") + " or on PATH; nothing was written", "Run `make protoc` once", "then this command again"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	sameFiles(t, before, snapshot(t, root))
}

// TestInit_HelpListsNoRoot: init takes no --root, so its help does not
// offer one.
func TestInit_HelpListsNoRoot(t *testing.T) {
	code, out, _ := runCLI(t, "init", "--help")
	if code != exitOK || strings.Contains(out, "-root") || !strings.Contains(out, "-dir") {
		t.Fatalf("svcgen init --help: exit %d\n%s\nwant exit 0, --dir listed and no --root", code, out)
	}
}

// TestGen_UnknownServiceSuggestsAValidName: `svcgen gen Inventory` once
// suggested `svcgen new Inventory`, which new refuses; the hint now
// names the lower-case service, or the existing one meant.
func TestGen_UnknownServiceSuggestsAValidName(t *testing.T) {
	root := fakeRoot(t)
	for _, c := range []struct{ arg, want string }{
		{"inventory", "no service inventory: services/inventory does not exist; create it with `"},
		{"Inventory", "does not exist; service names are lower-case: create it with `"},
		{"Memory", `does not exist, and service name "memory" would clash with the package memory`},
	} {
		code, _, errOut := runCLI(t, "gen", c.arg, "--root", root)
		if code != exitFailed || !strings.Contains(errOut, c.want) {
			t.Errorf("svcgen gen %s: exit %d, stderr %q; want exit 1 and %q", c.arg, code, errOut, c.want)
		}
		if lower := strings.ToLower(c.arg); !strings.Contains(errOut, " new "+lower+"`") && c.arg != "Memory" {
			t.Errorf("svcgen gen %s: stderr %q does not suggest `new %s`", c.arg, errOut, lower)
		}
		if strings.Contains(errOut, "new "+c.arg+"`") && c.arg != strings.ToLower(c.arg) {
			t.Errorf("svcgen gen %s suggests the invalid name: %q", c.arg, errOut)
		}
	}
	dir := filepath.Join(root, "services", "inventory")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "service.go"), []byte("package inventory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, errOut := runCLI(t, "gen", "Inventory", "--root", root); !strings.Contains(errOut, "service names are lower-case: did you mean inventory?") {
		t.Errorf("svcgen gen Inventory beside services/inventory: stderr %q", errOut)
	}
}
