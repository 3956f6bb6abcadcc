package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
	"github.com/warren-mesh/warren/framework/registry"
)

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
	if err := placeService(r.root, rel, files, deploys, commitAll, c.self(r)); err != nil {
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
			out = append(out, fileWrite{path: path, data: nb, old: b, existed: true})
		}
	}
	return out, nil
}

// placeService writes a new service: its directory (createDir), then its
// deploy entries with commitDeploys (commitAll, which puts back the
// deploy files it replaced when a later one fails; a test passes one that
// lets a deploy file change first). When the entries cannot be written the
// directory goes again, and services/ when it made that, so a failed new
// leaves the project as it was. Only when a deploy file could not be put
// back does the service stay, so that no entry names a missing directory;
// the message then names the gen that completes it, run as self (cli.self).
func placeService(root, rel string, files map[string][]byte, deploys []fileWrite, commitDeploys func([]fileWrite) error, self string) error {
	dir := filepath.Join(root, filepath.FromSlash(rel))
	made := missingDirs(filepath.Dir(dir))
	if err := createDir(root, rel, files); err != nil {
		return err
	}
	if err := commitDeploys(deploys); err != nil {
		var kept errNotPutBack
		if errors.As(err, &kept) {
			return fmt.Errorf("%w; %s is kept, since a deploy file may list it: check the deploy files, then run `%s gen %s` to complete its entries", err, rel, self, filepath.Base(rel))
		}
		os.RemoveAll(dir)
		removeEmpty(made)
		return err
	}
	return nil
}

// createDir writes files (paths relative to root, all under rel) into a
// temporary directory beside rel and renames it into place, so a failure
// leaves no half-made service, nor the parent directories it made for it
// (services/ of a project's first service).
func createDir(root, rel string, files map[string][]byte) (err error) {
	final := filepath.Join(root, filepath.FromSlash(rel))
	parent := filepath.Dir(final)
	made := missingDirs(parent)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			removeEmpty(made)
		}
	}()
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

// missingDirs are dir and those of its parents that do not exist yet,
// deepest first: what os.MkdirAll(dir) would make.
func missingDirs(dir string) []string {
	var out []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || filepath.Dir(d) == d {
			return out
		}
		out = append(out, d)
	}
}

// removeEmpty removes the directories missingDirs listed, deepest first,
// each only while it is empty: something else put there stays.
func removeEmpty(dirs []string) {
	for _, d := range dirs {
		if os.Remove(d) != nil {
			return
		}
	}
}
