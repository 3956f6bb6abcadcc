package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
)

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
			args = serviceDirs(r.root)
			if len(args) == 0 {
				return nil, fmt.Errorf("no services in %s (a service is services/NAME/service.go); create one with `%s new NAME`", services, c.self(r))
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
			return nil, fmt.Errorf("%s has no service.go: svcgen reads the Service interface from %s/service.go", rel, rel)
		}
		out = append(out, target{name: name, rel: rel, dir: dir})
	}
	return out, nil
}

// serviceDirs are the directories services/NAME with a service.go. A
// name starting with a dot is no service (the go command ignores such
// directories too): `svcgen new` builds a service in
// services/.svcgen-NAME-* before renaming it into place, and a new that
// was killed leaves that behind.
func serviceDirs(root string) []string {
	matches, _ := filepath.Glob(filepath.Join(root, "services", "*", "service.go"))
	var dirs []string
	for _, m := range matches {
		if dir := filepath.Dir(m); !strings.HasPrefix(filepath.Base(dir), ".") {
			dirs = append(dirs, dir)
		}
	}
	return dirs
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
	var results []genResult
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
		res := genResult{t: t, out: out, writes: map[string][]byte{}, old: files}
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
		for _, fn := range protoLast(slices.Sorted(mapKeys(res.writes))) {
			old, existed := res.old[fn]
			writes = append(writes, fileWrite{path: filepath.Join(res.t.dir, fn), data: res.writes[fn], old: old, existed: existed})
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
				writes = append(writes, fileWrite{path: path, data: nb, old: b, existed: true})
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
				stale = append(stale, res.t.rel+"/"+pb+" (missing; gen compiles it with protoc)")
			}
		}
		if len(stale) > 0 {
			slices.Sort(stale)
			return errOutOfDate{files: stale, self: c.self(r)}
		}
		for _, res := range results {
			fmt.Fprintf(c.stdout, "%s: up to date\n", res.t.rel)
		}
		return nil
	}
	if !*dry {
		if err := commit(writes); err != nil {
			if errors.As(err, new(errPartWay)) {
				// What docs/svcgen.md promises: the next gen sees what is
				// still old and writes it, .proto last so protoc runs too.
				return fmt.Errorf("%w, so a service may not build, or a deploy file may lack an entry, until gen runs again: run `%s` once the cause is fixed, and it completes them", err, c.genAgain(r, names(ts), *rootFlag != "", *renumber, *force))
			}
			return err
		}
	}
	verb := map[bool]string{false: "wrote", true: "would write"}[*dry]
	for _, d := range deployed {
		fmt.Fprintf(c.stdout, "%s %s\n", map[bool]string{false: "added", true: "would add"}[*dry], d)
	}
	for _, res := range results {
		// A service's notes come after what gen did to it, which they
		// are about (they came first, above the lines they explain).
		c.writeLines(res, verb, *dry)
		for _, n := range res.out.Notes {
			fmt.Fprintf(c.stderr, "svcgen gen: note: %s\n", n)
		}
		for _, n := range mainNotes(res.t, res.out.Service) {
			fmt.Fprintf(c.stderr, "svcgen gen: note: %s\n", n)
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
	wrote := map[string]bool{} // the service's own files, not the deploy files
	for _, res := range results {
		rels = append(rels, res.t.rel)
		wrote[res.t.rel] = len(res.writes) > 0
	}
	return c.typecheck(r.root, rels, wrote)
}

// genResult is what gen made of one service, before anything is written.
type genResult struct {
	t      target
	out    *gen.Output
	writes map[string][]byte // changed files
	old    map[string][]byte
	// missing are .pb.go files --verify found missing without running
	// protoc.
	missing []string
}

// writeLines says what gen wrote (or, in a dry run, would write) of one
// service: "up to date", or a line per file.
func (c *cli) writeLines(res genResult, verb string, dry bool) {
	if len(res.writes) == 0 {
		fmt.Fprintf(c.stdout, "%s: up to date\n", res.t.rel)
		return
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
		if dry {
			fmt.Fprintf(c.stdout, "=== %s\n%s", path, res.writes[fn])
		}
	}
}

// genAgain is the gen command line that repeats this one in the same
// project, for a hint: its services by name (positional arguments may be
// paths relative to where it ran; none may mean the working directory's
// service) and the flags that change what gen writes. svcgen on PATH is
// given the project's root when this run was; a go command finds it
// itself (cli.self).
func (c *cli) genAgain(r repo, services []string, root, renumber, protoc bool) string {
	self := c.self(r)
	args := append([]string{self, "gen"}, services...)
	if renumber {
		args = append(args, "--renumber")
	}
	if protoc {
		args = append(args, "--protoc")
	}
	if root && self == "svcgen" {
		args = append(args, "--root", shellWord(r.root))
	}
	return strings.Join(args, " ")
}

// names are the services of ts, in order.
func names(ts []target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.name
	}
	return out
}

// protoLast orders a service's files so that each .proto is replaced
// after everything else, its .pb.go files included: gen runs protoc only
// for a .proto that changed (or a missing .pb.go), so a run stopped
// part-way must leave the old .proto for the next run to see the change
// and compile it again.
func protoLast(fns []string) []string {
	slices.SortStableFunc(fns, func(a, b string) int {
		pa, pb := strings.HasSuffix(a, ".proto"), strings.HasSuffix(b, ".proto")
		switch {
		case pa == pb:
			return 0
		case pa:
			return 1
		}
		return -1
	})
	return fns
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
// paths, relative to the repository root, and svcgen as it runs here
// (cli.self), for the command that brings them up to date.
type errOutOfDate struct {
	files []string
	self  string
}

func (e errOutOfDate) Error() string {
	return fmt.Sprintf("the generated code is out of date with service.go; run `%s gen` and commit what it writes. Files it would change:\n  %s", e.self, strings.Join(e.files, "\n  "))
}
