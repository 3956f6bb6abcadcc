package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
	"github.com/warren-mesh/warren/framework/registry"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the service has problems, or a file could not be written
	exitUsage   = 2 // the command line is wrong
	docsPointer = "docs/svcgen.md"
)

const usage = `svcgen writes the endpoint, HTTP transport and client code of Warren
services from their Service interface, so you write business methods only.

Usage:
  svcgen init MODULE [--dir DIR] [--warren VERSION | --replace PATH]
  svcgen new NAME [--port N] [--registry NAME] [--registry-package PATH] [--methods "A,B"] [--grpc] [--dry-run]
  svcgen gen [NAME | ./services/NAME]... [--dry-run | --verify] [--no-check] [--protoc] [--renumber]
  svcgen list
  svcgen help [COMMAND]

Commands:
  init   create a project (a Go module) for Warren services: go.mod, a
         Makefile with make up and make test, deploy/compose, a README
  new    create services/NAME: service.go (yours), generated *_gen.go files,
         cmd/NAME/main.go and tests; add NAME to deploy/compose
  gen    rewrite the *_gen.go files of the named services (all when none is
         named) from service.go, appending stubs for methods the
         implementation lacks; never touches anything else
  list   show the services and their routes

new, gen and list take --root DIR (default: the nearest directory above the
working directory with a go.mod); init creates a new directory (--dir). "svcgen COMMAND --help" shows a command's
flags; ` + docsPointer + ` has the details.

Exit status: 0 done, 1 the service has problems (listed as file:line) or a
file could not be written, 2 the command line is wrong.
`

// errUsage marks an error whose message is about the command line.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usageErr(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

// cli is one invocation.
type cli struct {
	stdout, stderr io.Writer
	wd             string
	// lookPath finds a command on PATH (exec.LookPath), for the hints
	// that name svcgen.
	lookPath func(string) (string, error)
	// typecheck compiles the services gen wrote (the typecheck func);
	// nil in tests of the CLI alone, whose fake repositories have no
	// framework to compile against.
	typecheck func(root string, rels []string) error
}

// run runs svcgen with args (without the program name) and returns the
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "svcgen: %v\n", err)
		return exitFailed
	}
	c := &cli{stdout: stdout, stderr: stderr, wd: wd, lookPath: exec.LookPath, typecheck: typecheck}
	return c.run(args)
}

// run runs one command line.
func (c *cli) run(args []string) int {
	stdout, stderr := c.stdout, c.stderr
	var err error
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "init":
		err = c.init(rest)
	case "new":
		err = c.new(rest)
	case "gen":
		err = c.gen(rest)
	case "list":
		err = c.list(rest)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" {
			return c.run([]string{rest[0], "--help"})
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "svcgen: unknown command %q; the commands are init, new, gen, list and help (svcgen help)\n", cmd)
		return exitUsage
	}
	var ue errUsage
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "svcgen %s: %v\nRun `svcgen %s --help` for usage.\n", cmd, err, cmd)
		return exitUsage
	}
	var drift errDrift
	if errors.As(err, &drift) {
		fmt.Fprintf(stderr, "svcgen %s: %v\n", cmd, err)
		return exitFailed
	}
	var probs gen.Problems
	if errors.As(err, &probs) {
		fmt.Fprintf(stderr, "svcgen %s: nothing was written; fix these first:\n", cmd)
		for _, p := range probs {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		fmt.Fprintf(stderr, "Supported signatures and annotations: %s\n", docsPointer)
		return exitFailed
	}
	fmt.Fprintf(stderr, "svcgen %s: %v\n", cmd, err)
	return exitFailed
}

// flags builds a command's flag set with --root and its usage text.
func (c *cli) flags(name, synopsis, about string) (*flag.FlagSet, *string) {
	fs := c.flagSet(name, synopsis, about)
	root := fs.String("root", "", "repository root (default: nearest directory with a go.mod above the working directory)")
	return fs, root
}

// flagSet builds a command's flag set, without --root, and its usage text.
func (c *cli) flagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("svcgen "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(c.stdout, "Usage: svcgen %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.SetOutput(c.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses flags that may come before, between or after the
// positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err // fs.Parse has printed the usage
			}
			return nil, usageErr("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// repo is the repository svcgen works in.
type repo struct {
	root, module string
}

func (c *cli) repo(flagRoot string) (repo, error) {
	root := flagRoot
	if root == "" {
		for dir := c.wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
				break
			}
			if filepath.Dir(dir) == dir {
				return repo{}, fmt.Errorf("no go.mod in %s or above it; run svcgen inside the repository or pass --root", c.wd)
			}
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return repo{}, err
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return repo{}, fmt.Errorf("read the module: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return repo{root: root, module: strings.Trim(strings.TrimSpace(m), `"`)}, nil
		}
	}
	return repo{}, fmt.Errorf("%s has no module line", filepath.Join(root, "go.mod"))
}

func (c *cli) new(args []string) error {
	fs, rootFlag := c.flags("new", "NAME [flags]",
		"Creates services/NAME with service.go (the Service interface and its\nimplementation, yours to edit), the generated *_gen.go files,\ncmd/NAME/main.go and tests (a unit test and a conformance test against a\nreal embedded etcd), and adds NAME to deploy/compose when it has svcgen's\nmarker. NAME is a DNS label: lower-case letters, digits and single dashes,\nstarting with a letter, not ending with a dash.")
	port := fs.Int("port", 0, "default listen port of the generated main (0: the framework's :8080); recorded as bootstrap.WithDefault; --listen and WARREN_LISTEN still win")
	reg := fs.String("registry", "", "default registry of the generated main: "+strings.Join(gen.MainRegistries, ", ")+", or a backend of --registry-package (empty: the first); --registry and WARREN_REGISTRY still win")
	var regPkgs []string
	fs.Func("registry-package", "import path of a registry backend of your own (it exports Backend() registry.Backend), listed before Warren's in the generated main, so the first is the default; repeat or comma-separate for several", func(v string) error {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if _, err := gen.RegistryAlias(p); err != nil {
				return err
			}
			if !slices.Contains(regPkgs, p) {
				regPkgs = append(regPkgs, p)
			}
		}
		return nil
	})
	methods := fs.String("methods", "", `more methods besides the example Hello, comma- or space-separated ("Charge,Refund"); each gets request and response types and a stub`)
	grpc := fs.Bool("grpc", false, "serve gRPC beside HTTP: a //warren:grpc line in service.go, a .proto in NAMEpb/ compiled with protoc (make protoc), gRPC adapters and a main that serves both")
	dry := fs.Bool("dry-run", false, "print what would be written and write nothing")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usageErr("missing the service name (svcgen new payment)")
	case len(pos) > 1:
		return usageErr("one service at a time; got %q", pos)
	case *port < 0 || *port > 65535:
		return usageErr("--port %d: want 1…65535", *port)
	case *reg != "" && len(regPkgs) == 0 && !slices.Contains(gen.MainRegistries, *reg):
		return usageErr("--registry %q: want one of %s, or give the package of your own backend with --registry-package", *reg, strings.Join(gen.MainRegistries, ", "))
	case *reg != "" && !registry.ValidName(*reg):
		return usageErr("--registry %q: a backend's name is a lower-case DNS label", *reg)
	}
	name := pos[0]
	if _, err := gen.PackageName(name); err != nil {
		return usageErr("%v", err)
	}
	var ms []string
	for _, m := range strings.FieldsFunc(*methods, func(r rune) bool { return r == ',' || r == ' ' }) {
		mn, err := gen.MethodName(m)
		if err != nil {
			return usageErr("--methods: %v", err)
		}
		if mn == "Hello" || slices.Contains(ms, mn) {
			return usageErr("--methods: %s is listed twice (Hello is the example method, always there)", mn)
		}
		ms = append(ms, mn)
	}
	r, err := c.repo(*rootFlag)
	if err != nil {
		return err
	}
	rel := "services/" + name
	dir := filepath.Join(r.root, "services", name)
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%s already exists; svcgen new never touches an existing service. To regenerate its code after changing service.go, run `%s gen %s`", rel, c.self(r), name)
	}
	files, err := gen.New(gen.NewOptions{Name: name, Module: r.module, Registry: *reg, RegistryPackages: regPkgs, Port: *port, Methods: ms, GRPC: *grpc})
	if err != nil {
		return err
	}
	for _, proto := range protos(files) {
		if *dry {
			break // protoc's output is not shown
		}
		sub := strings.TrimPrefix(proto, rel+"/")
		pbs, err := runProtoc(r.root, rel, sub, files[proto])
		var missing errMissingTool
		if errors.As(err, &missing) {
			return fmt.Errorf("--grpc compiles the new service's .proto with protoc, and %s is not in %s or on PATH; nothing was written. "+
				"Run `make protoc` once (it builds protoc's Go plugins into bin/ and checks protoc itself; Debian: apt-get install protobuf-compiler libprotobuf-dev), then this command again",
				missing.name, missing.bin)
		}
		if err != nil {
			return err
		}
		for fn, b := range pbs {
			files[rel+"/"+fn] = b
		}
	}
	paths := slices.Sorted(mapKeys(files))
	if *dry {
		for _, p := range paths {
			fmt.Fprintf(c.stdout, "=== %s (would create, %d bytes)\n%s", p, len(files[p]), files[p])
		}
		fmt.Fprintf(c.stdout, "dry run: nothing was written\n")
		return nil
	}
	deploys, err := deployEdits(r.root, name, *grpc)
	if err != nil {
		return err
	}
	if err := createDir(r.root, rel, files); err != nil {
		return err
	}
	if err := commit(deploys); err != nil {
		os.RemoveAll(dir) // nothing half done: the service goes with its deploy entries
		return err
	}
	fmt.Fprintf(c.stdout, "created %s:\n", rel)
	for _, p := range paths {
		fmt.Fprintf(c.stdout, "  %s\n", p)
	}
	for _, w := range deploys {
		p, _ := filepath.Rel(r.root, w.path)
		if gen.IsChartValues(p) {
			fmt.Fprintf(c.stdout, "added %s to %s (the Helm chart)\n", name, filepath.ToSlash(p))
			continue
		}
		fmt.Fprintf(c.stdout, "added %s to %s (profiles etcd and consul)\n", name, filepath.ToSlash(p))
	}
	self := c.self(r)
	fmt.Fprintf(c.stdout, "Next:\n")
	if r.module != gen.FrameworkModule {
		fmt.Fprintf(c.stdout, "  go mod tidy\n")
	}
	fmt.Fprintf(c.stdout, "  go test ./%s/...\n  edit %s/service.go, then: %s gen %s\n", rel, rel, self, name)
	return nil
}

// deployFiles are the deploy files svcgen keeps in step with the
// services, where they exist and have svcgen's marker.
var deployFiles = []string{"deploy/compose/compose.yaml", "deploy/compose/compose.public.yaml", "deploy/k8s/values.yaml"}

// deployEdits adds a new service to the compose files and the Helm
// chart's values of the repository that have svcgen's marker; files
// without it are left alone, a file that has the service already is an
// error. grpc: the service serves gRPC too (the chart gives it a grpc
// port).
func deployEdits(root, name string, grpc bool) ([]fileWrite, error) {
	var out []fileWrite
	for _, f := range deployFiles {
		path := filepath.Join(root, filepath.FromSlash(f))
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		nb, ok, err := gen.AddToDeploy(f, b, name, grpc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w; nothing was written", f, err)
		}
		if ok {
			out = append(out, fileWrite{path: path, data: nb})
		}
	}
	return out, nil
}

// self is how the user runs svcgen here, for hints: the command on PATH,
// the module's tool, or go run.
func (c *cli) self(r repo) string {
	if _, err := c.lookPath("svcgen"); err == nil {
		return "svcgen"
	}
	if b, err := os.ReadFile(filepath.Join(r.root, "go.mod")); err == nil && bytes.Contains(b, []byte(gen.FrameworkModule+"/cmd/svcgen")) {
		return "go tool svcgen"
	}
	if r.module == gen.FrameworkModule {
		return "go run ./cmd/svcgen"
	}
	return "go run " + gen.FrameworkModule + "/cmd/svcgen"
}

// createDir writes files (paths relative to root, all under rel) into a
// temporary directory beside rel and renames it into place, so a failure
// leaves no half-made service.
func createDir(root, rel string, files map[string][]byte) error {
	final := filepath.Join(root, filepath.FromSlash(rel))
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".svcgen-"+filepath.Base(final)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	for p, b := range files {
		sub, ok := strings.CutPrefix(p, rel+"/")
		if !ok {
			return fmt.Errorf("svcgen bug: %s is outside %s", p, rel)
		}
		dst := filepath.Join(tmp, filepath.FromSlash(sub))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("move the new service into place: %w", err)
	}
	return nil
}

// target is one service gen works on.
type target struct {
	name, rel, dir string
}

func (c *cli) targets(r repo, args []string) ([]target, error) {
	services := filepath.Join(r.root, "services")
	if len(args) == 0 {
		// Inside a service directory: that service; elsewhere: all.
		if rel, err := filepath.Rel(services, c.wd); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			args = []string{filepath.Join(services, strings.Split(filepath.ToSlash(rel), "/")[0])}
		} else {
			matches, _ := filepath.Glob(filepath.Join(services, "*", "service.go"))
			if len(matches) == 0 {
				return nil, fmt.Errorf("no services in %s (a service is services/NAME/service.go); create one with `%s new NAME`", services, c.self(r))
			}
			for _, m := range matches {
				args = append(args, filepath.Dir(m))
			}
		}
	}
	var out []target
	for _, a := range args {
		dir := a
		if !strings.ContainsAny(a, `/\`) && a != "." && a != ".." {
			dir = filepath.Join(services, a)
		} else if !filepath.IsAbs(a) {
			dir = filepath.Join(c.wd, a)
			if filepath.Dir(filepath.Clean(dir)) != services {
				dir = filepath.Join(r.root, a) // ./services/NAME from the root
			}
		}
		dir = filepath.Clean(dir)
		if filepath.Dir(dir) != services {
			return nil, usageErr("%s is not a service directory; want NAME or ./services/NAME", a)
		}
		name := filepath.Base(dir)
		rel := "services/" + name
		if _, err := os.Stat(filepath.Join(dir, "service.go")); err != nil {
			if _, derr := os.Stat(dir); derr != nil {
				return nil, fmt.Errorf("no service %s: %s does not exist%s", name, rel, c.newHint(r, name))
			}
			return nil, fmt.Errorf("%s has no service.go: svcgen reads the Service interface from services/NAME/service.go", rel)
		}
		out = append(out, target{name: name, rel: rel, dir: dir})
	}
	return out, nil
}

// newHint ends the message about a service that does not exist: how to
// create it, under a name svcgen new accepts (service names are
// lower-case: gen Inventory suggests inventory, or names the existing
// services/inventory).
func (c *cli) newHint(r repo, name string) string {
	if _, err := gen.PackageName(name); err == nil {
		return fmt.Sprintf("; create it with `%s new %s`", c.self(r), name)
	}
	lower := strings.ToLower(name)
	if _, err := gen.PackageName(lower); err != nil {
		return fmt.Sprintf(", and %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.root, "services", lower, "service.go")); err == nil {
		return fmt.Sprintf("; service names are lower-case: did you mean %s?", lower)
	}
	return fmt.Sprintf("; service names are lower-case: create it with `%s new %s`", c.self(r), lower)
}

// mainNotes says what the service's main (services/NAME/cmd/NAME/main.go,
// where `svcgen new` puts it) must change to serve every transport the
// service has; none when there is no such file.
func mainNotes(t target, svc *gen.Service) []string {
	b, err := os.ReadFile(filepath.Join(t.dir, "cmd", t.name, "main.go"))
	if err != nil {
		return nil
	}
	return svc.MainNotes(t.rel+"/cmd/"+t.name+"/main.go", b)
}

// readGo returns the Go files of dir by name.
func readGo(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	return files, nil
}

func (c *cli) gen(args []string) error {
	fs, rootFlag := c.flags("gen", "[NAME | ./services/NAME]... [flags]",
		"Reads each service's Service interface (services/NAME/service.go) and\nrewrites only its generated files: "+strings.Join(gen.GeneratedFiles(), ", ")+".\nA method the implementation lacks gets a stub appended to your file;\nnothing of yours is changed or deleted. Running it twice changes nothing.\nWith no NAME: the service of the working directory, or every service.")
	dry := fs.Bool("dry-run", false, "print what would be written and write nothing")
	verify := fs.Bool("verify", false, "write nothing; exit 1 listing the files gen would change when the generated code is out of date with service.go (for CI); protoc is not run unless --protoc is given: a changed .proto or a missing .pb.go counts as out of date")
	force := fs.Bool("protoc", false, "compile every gRPC service's .proto with protoc even when it did not change (by default protoc runs only for a changed .proto or a missing .pb.go)")
	renumber := fs.Bool("renumber", false, "number a gRPC service's protobuf fields afresh from 1 when its NAMEpb/NAME.proto is missing, instead of refusing because the service shows it had one; callers built from the old .proto would misread every field that moved (no effect while the .proto is there)")
	noCheck := fs.Bool("no-check", false, "do not compile the services after writing (by default gen runs go build and go vet -buildtag on them, their tests type-checked too, and exits 1 when the implementation or a test of yours no longer matches the interface)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *verify && *dry {
		return usageErr("--verify and --dry-run do not go together: --verify lists what is out of date, --dry-run prints it")
	}
	r, err := c.repo(*rootFlag)
	if err != nil {
		return err
	}
	ts, err := c.targets(r, pos)
	if err != nil {
		return err
	}
	// Everything is generated before anything is written.
	type result struct {
		t      target
		out    *gen.Output
		writes map[string][]byte // changed files
		old    map[string][]byte
		// missing are .pb.go files --verify found missing without
		// running protoc.
		missing []string
	}
	var results []result
	var probs gen.Problems
	for _, t := range ts {
		files, err := readGo(t.dir)
		if err != nil {
			return err
		}
		out, err := gen.GenerateWith(t.rel, t.name, r.module, files, os.DirFS(t.dir), gen.Options{Renumber: *renumber})
		var ps gen.Problems
		if errors.As(err, &ps) {
			probs = append(probs, ps...)
			continue
		}
		if err != nil {
			return err
		}
		res := result{t: t, out: out, writes: map[string][]byte{}, old: files}
		res.missing, err = c.extraFiles(r.root, t, out, files, *force, *verify && !*force)
		if err != nil {
			var ps gen.Problems
			if errors.As(err, &ps) {
				probs = append(probs, ps...)
				continue
			}
			return err
		}
		for fn, b := range out.Files {
			if !bytes.Equal(files[fn], b) {
				res.writes[fn] = b
			}
		}
		results = append(results, res)
	}
	if len(probs) > 0 {
		return probs
	}
	var writes []fileWrite
	for _, res := range results {
		for _, fn := range slices.Sorted(mapKeys(res.writes)) {
			writes = append(writes, fileWrite{path: filepath.Join(res.t.dir, fn), data: res.writes[fn]})
		}
	}
	// Deploy entries in step: a service missing from a deploy file with
	// svcgen's marker is added, and a gRPC service's chart entry gets
	// grpcPort if it lacks one (one file write, every service in it).
	var deployed []string
	for _, res := range results {
		grpc := res.out.Service.Serves(gen.GRPCEmitter{}.Name())
		for _, f := range deployFiles {
			path := filepath.Join(r.root, filepath.FromSlash(f))
			i := slices.IndexFunc(writes, func(x fileWrite) bool { return x.path == path })
			var b []byte
			if i >= 0 {
				b = writes[i].data
			} else if b, err = os.ReadFile(path); errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			nb, what, err := gen.SyncDeploy(f, b, res.t.name, grpc)
			if err != nil {
				return fmt.Errorf("%s: %w; nothing was written", f, err)
			}
			switch {
			case what == "":
				continue
			case i >= 0:
				writes[i].data = nb
			default:
				writes = append(writes, fileWrite{path: path, data: nb})
			}
			switch {
			case what == gen.DeployGRPCPort:
				deployed = append(deployed, fmt.Sprintf("grpcPort %d to %s's entry in %s (it serves gRPC)", gen.ChartGRPCPort, res.t.name, f))
			case gen.IsChartValues(f):
				deployed = append(deployed, fmt.Sprintf("%s to %s (the Helm chart)", res.t.name, f))
			default:
				deployed = append(deployed, fmt.Sprintf("%s to %s (profiles etcd and consul)", res.t.name, f))
			}
		}
	}
	if *verify {
		var stale []string
		for _, w := range writes {
			rel, err := filepath.Rel(r.root, w.path)
			if err != nil {
				rel = w.path
			}
			stale = append(stale, filepath.ToSlash(rel))
		}
		for _, res := range results {
			for _, pb := range res.missing {
				stale = append(stale, res.t.rel+"/"+pb+" (missing: run svcgen gen --protoc)")
			}
		}
		if len(stale) > 0 {
			slices.Sort(stale)
			return errOutOfDate(stale)
		}
		for _, res := range results {
			fmt.Fprintf(c.stdout, "%s: up to date\n", res.t.rel)
		}
		return nil
	}
	if !*dry {
		if err := commit(writes); err != nil {
			return err
		}
	}
	verb := map[bool]string{false: "wrote", true: "would write"}[*dry]
	for _, d := range deployed {
		fmt.Fprintf(c.stdout, "%s %s\n", map[bool]string{false: "added", true: "would add"}[*dry], d)
	}
	for _, res := range results {
		for _, n := range res.out.Notes {
			fmt.Fprintf(c.stderr, "svcgen gen: note: %s\n", n)
		}
		for _, n := range mainNotes(res.t, res.out.Service) {
			fmt.Fprintf(c.stderr, "svcgen gen: note: %s\n", n)
		}
		if len(res.writes) == 0 {
			fmt.Fprintf(c.stdout, "%s: up to date\n", res.t.rel)
			continue
		}
		for _, fn := range slices.Sorted(mapKeys(res.writes)) {
			path := res.t.rel + "/" + fn
			if text, ok := res.out.Appended[fn]; ok {
				fmt.Fprintf(c.stdout, "%s: %s %s: appended for you to fill in:\n%s", res.t.rel, verb, path, indent(text))
				continue
			}
			what := "update"
			if _, existed := res.old[fn]; !existed {
				what = "create"
			}
			fmt.Fprintf(c.stdout, "%s: %s %s (%s)\n", res.t.rel, verb, path, what)
			if *dry {
				fmt.Fprintf(c.stdout, "=== %s\n%s", path, res.writes[fn])
			}
		}
	}
	if *dry {
		fmt.Fprintf(c.stdout, "dry run: nothing was written\n")
		return nil
	}
	if *noCheck || c.typecheck == nil {
		return nil
	}
	var rels []string
	for _, res := range results {
		rels = append(rels, res.t.rel)
	}
	return c.typecheck(r.root, rels)
}

func indent(b []byte) string {
	var sb strings.Builder
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			sb.WriteString("    ")
		}
		sb.WriteString(l)
	}
	return sb.String()
}

// errOutOfDate is gen --verify's answer when gen would change files: their
// paths, relative to the repository root.
type errOutOfDate []string

func (e errOutOfDate) Error() string {
	return fmt.Sprintf("the generated code is out of date with service.go; run `svcgen gen` and commit what it writes. Files it would change:\n  %s", strings.Join(e, "\n  "))
}

// fileWrite is one file gen replaces.
type fileWrite struct {
	path string
	data []byte
}

// commit writes every file to a temporary file beside it first and then
// renames them all, so a failed write changes nothing.
func commit(writes []fileWrite) error {
	tmps := make([]string, len(writes))
	cleanup := func() {
		for _, t := range tmps {
			if t != "" {
				os.Remove(t)
			}
		}
	}
	for i, w := range writes {
		if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
			cleanup()
			return err
		}
		f, err := os.CreateTemp(filepath.Dir(w.path), ".svcgen-*.tmp")
		if err != nil {
			cleanup()
			return err
		}
		tmps[i] = f.Name()
		_, werr := f.Write(w.data)
		if err := errors.Join(werr, f.Chmod(0o644), f.Close()); err != nil {
			cleanup()
			return fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	for i, w := range writes {
		if err := os.Rename(tmps[i], w.path); err != nil {
			cleanup()
			return fmt.Errorf("replace %s: %w", w.path, err)
		}
		tmps[i] = ""
	}
	return nil
}

func (c *cli) list(args []string) error {
	fs, rootFlag := c.flags("list", "[flags]", "Lists every service under services/ with its methods and routes.")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("list takes no arguments; got %q", pos)
	}
	r, err := c.repo(*rootFlag)
	if err != nil {
		return err
	}
	matches, _ := filepath.Glob(filepath.Join(r.root, "services", "*", "service.go"))
	if len(matches) == 0 {
		fmt.Fprintf(c.stdout, "no services yet; create one with `%s new NAME`\n", c.self(r))
		return nil
	}
	var probs gen.Problems
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, m := range matches {
		dir := filepath.Dir(m)
		name := filepath.Base(dir)
		files, err := readGo(dir)
		if err != nil {
			return err
		}
		svc, err := gen.Load("services/"+name, name, r.module, files, nil)
		var ps gen.Problems
		if errors.As(err, &ps) {
			probs = append(probs, ps...)
			fmt.Fprintf(tw, "%s\t(services/%s: has problems, see below)\n", name, name)
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\tservices/%s\n", name, name)
		for _, m := range svc.Methods {
			var marks []string // how the generated client retries it
			for _, mk := range []struct {
				on   bool
				name string
			}{{m.Idempotent, "idempotent"}, {m.Keyed, "keyed"}, {m.NoRetry, "noretry"}} {
				if mk.on {
					marks = append(marks, mk.name)
				}
			}
			routes := svc.Routes(m.Name)
			// A GET route is idempotent in every generated client (HTTP's
			// client.NewEndpoint, gRPC's grpcclient.Idempotent()) without
			// the annotation; a keyed or noretry mark overrides it.
			if len(marks) == 0 && strings.HasPrefix(routes["http"], "GET ") {
				marks = append(marks, "idempotent (GET)")
			}
			extra := strings.Join(marks, ",")
			var rs []string
			for _, t := range slices.Sorted(mapKeys(routes)) {
				rs = append(rs, routes[t])
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.Name, strings.Join(rs, ", "), m.Req+" → "+m.Resp, extra)
		}
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		fmt.Fprint(c.stdout, strings.TrimRight(l, " \n")+strings.Repeat("\n", strings.Count(l, "\n")))
	}
	if len(probs) > 0 {
		return probs
	}
	return nil
}

func mapKeys[V any](m map[string]V) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
