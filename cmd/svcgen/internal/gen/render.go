package gen

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"path"
	"slices"
	"strings"
	"text/template"

	modpath "golang.org/x/mod/module"

	"github.com/warren-mesh/warren/templates"
)

var tmpl = template.Must(template.New("svcgen").ParseFS(templates.FS, "*.tmpl"))

// transport is one emitter's prepared view of a service.
type transport struct {
	emitter Emitter
	Transport
}

// execute runs one template of t and gofmts the result.
func execute(t *template.Template, name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("svcgen: template %s: %w", name, err)
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("svcgen: template %s produced invalid Go (a svcgen bug; please report it with your service.go): %w\n%s", name, err, b.Bytes())
	}
	return out, nil
}

// render executes one of the core templates.
func render(name string, data any) ([]byte, error) { return execute(tmpl, name, data) }

// Render returns the generated files of svc, by file name: the core
// files and one per transport.
func Render(svc *Service) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, fn := range coreFiles {
		b, err := render(fn+".tmpl", svc)
		if err != nil {
			return nil, err
		}
		out[fn] = b
	}
	for _, t := range svc.transports {
		b, err := t.Render()
		if err != nil {
			return nil, err
		}
		out[t.emitter.File()] = b
		if tf, ok := t.emitter.(TestFiler); ok {
			tr, ok := t.Transport.(TestRenderer)
			if !ok {
				return nil, fmt.Errorf("svcgen: transport %s names the test file %s but renders none (a svcgen bug)", t.emitter.Name(), tf.TestFile())
			}
			b, err := tr.RenderTest()
			if err != nil {
				return nil, err
			}
			out[tf.TestFile()] = b
		}
		if x, ok := t.Transport.(ExtraFiles); ok {
			extra, err := x.Extra()
			if err != nil {
				return nil, err
			}
			for fn, b := range extra {
				out[fn] = b
			}
		}
	}
	return out, nil
}

// Routes says how each transport addresses a method, by transport name
// ("http": "GET /users/{id}").
func (svc *Service) Routes(method string) map[string]string {
	out := map[string]string{}
	for _, t := range svc.transports {
		if r := t.Route(method); r != "" {
			out[t.emitter.Name()] = r
		}
	}
	return out
}

// appendText is what gen appends to the user's file: new types and
// method stubs, formatted as gofmt would.
func (svc *Service) appendText() ([]byte, error) {
	if len(svc.types) == 0 && len(svc.stubs) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, "stub.go.tmpl", map[string]any{"Types": svc.types, "Stubs": svc.stubs}); err != nil {
		return nil, fmt.Errorf("svcgen: template stub.go.tmpl: %w", err)
	}
	text := strings.TrimLeft(b.String(), "\n")
	src, err := format.Source([]byte("package p\n\n" + text))
	if err != nil {
		return nil, fmt.Errorf("svcgen: stub template produced invalid Go (a svcgen bug): %w\n%s", err, text)
	}
	return bytes.TrimPrefix(src, []byte("package p\n\n")), nil
}

// Output is what gen leaves in one service directory.
type Output struct {
	Service *Service
	// Files holds the full new content of every file gen writes, by file
	// name: the generated files and, when it gained stubs or types, the
	// user's file.
	Files map[string][]byte
	// Appended is the text added to a user file, by file name.
	Appended map[string][]byte
	// Notes are things the user should know that are not errors.
	Notes []string
}

// Generate reads a service's files (name → content, as in the directory)
// and returns everything gen writes. dir is the directory as messages
// show it (services/user). prev is that directory, where a transport reads
// what svcgen wrote before (the .proto, whose field numbers stay); nil for
// a service not written yet.
func Generate(dir, name, module string, files map[string][]byte, prev fs.FS) (*Output, error) {
	return GenerateWith(dir, name, module, files, prev, Options{})
}

// Options are what a gen run is told beyond the service's files.
type Options struct {
	// Renumber numbers a gRPC service's protobuf fields afresh from 1
	// when its .proto is missing, where gen would refuse because the
	// service shows it had one (gen --renumber).
	Renumber bool
}

// GenerateWith is Generate with options.
func GenerateWith(dir, name, module string, files map[string][]byte, prev fs.FS, opt Options) (*Output, error) {
	var probs Problems
	for _, fn := range GeneratedFiles() {
		if b, ok := files[fn]; ok && !bytes.HasPrefix(b, []byte(generatedHeader)) {
			probs = append(probs, Problem{Pos: position(path.Join(dir, fn), 1),
				Msg: fmt.Sprintf("this file does not start with %q, so it is not svcgen's to rewrite; rename it (svcgen writes %s)", strings.TrimSpace(generatedHeader), strings.Join(GeneratedFiles(), ", "))})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	svc, err := load(dir, name, module, files, prev, opt)
	if err != nil {
		return nil, err
	}
	if p := grpcLeftBehind(dir, svc, files); p != nil {
		return nil, Problems{*p}
	}
	out := &Output{Service: svc, Files: map[string][]byte{}, Appended: map[string][]byte{}, Notes: svc.notes}
	gen, err := Render(svc)
	if err != nil {
		return nil, err
	}
	for fn, b := range gen {
		out.Files[fn] = b
	}
	text, err := svc.appendText()
	if err != nil {
		return nil, err
	}
	if text != nil {
		old := files[svc.appendFile]
		// In the file's own line endings: a CRLF file stays CRLF.
		nl := []byte("\n")
		if i := bytes.IndexByte(old, '\n'); i > 0 && old[i-1] == '\r' {
			nl = []byte("\r\n")
		}
		nb := slices.Clone(old)
		if len(nb) > 0 && nb[len(nb)-1] != '\n' {
			nb = append(nb, nl...)
		}
		nb = append(nb, nl...)
		nb = append(nb, bytes.ReplaceAll(text, []byte("\n"), nl)...)
		out.Files[svc.appendFile] = nb
		out.Appended[svc.appendFile] = text
	}
	return out, nil
}

// grpcLeftBehind is the problem of a service whose gRPC code svcgen
// generated before but whose service.go no longer asks for it (the
// //warren:grpc line deleted, or parted from `type Service` by a blank
// line): gen would leave that code as it was, and the service would go on
// serving gRPC from types that no longer match, while gen and gen
// --verify said "up to date" (report r54b G4).
func grpcLeftBehind(dir string, svc *Service, files map[string][]byte) *Problem {
	if svc.Serves(GRPCEmitter{}.Name()) {
		return nil
	}
	b, ok := files[GRPCEmitter{}.File()]
	if !ok || !bytes.HasPrefix(b, []byte(generatedHeader)) {
		return nil
	}
	return &Problem{Pos: position(path.Join(dir, GRPCEmitter{}.File()), 1), Msg: fmt.Sprintf(
		"svcgen generated this gRPC code before, but the Service interface has no //warren:grpc line now (it must be directly above `type Service`, no blank line between), "+
			"so gen would leave it as it is, out of step with the interface; put the line back, or, to stop serving gRPC, "+
			"delete %s, %s and %s/ and have the service's main serve HTTP only",
		path.Join(dir, GRPCEmitter{}.File()), path.Join(dir, "grpc_gen_test.go"), path.Join(dir, svc.Package+"pb"))}
}

// MainRegistries are the registry backends a generated main offers
// (bootstrap.WithRegistries), each a package framework/registry/NAME
// whose Backend() is named NAME; the first is the default. `svcgen new
// --registry` takes one of them.
var MainRegistries = []string{"etcd", "consul", "zookeeper", "kubernetes", "memory"}

// RegistryAlias is the name a generated main imports a registry backend
// package as (the path's last element, letters and digits only), or an
// error saying why the path cannot be one. The package must export
// `func Backend() registry.Backend`.
func RegistryAlias(importPath string) (string, error) {
	if err := modpath.CheckImportPath(importPath); err != nil {
		return "", fmt.Errorf("registry package %q: %w", importPath, err)
	}
	var b strings.Builder
	for _, r := range strings.ToLower(path.Base(importPath)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' && b.Len() > 0 {
			b.WriteRune(r)
		}
	}
	alias := b.String()
	switch {
	case alias == "":
		return "", fmt.Errorf("registry package %q: its last element gives no Go name to import it as", importPath)
	case slices.Contains(MainRegistries, alias):
		return "", fmt.Errorf("registry package %q: imported as %s, the name of Warren's own backend; name its directory otherwise", importPath, alias)
	case alias == "bootstrap" || alias == "grpcserver" || alias == "context":
		return "", fmt.Errorf("registry package %q: imported as %s, which the generated main already imports; name its directory otherwise", importPath, alias)
	}
	return alias, nil
}

// mainRegistry is one backend of a generated main: the name it is
// imported as and its import path.
type mainRegistry struct{ Alias, Path string }

// NewOptions are the choices of `svcgen new`.
type NewOptions struct {
	Name     string
	Module   string
	Registry string // default registry of the generated main ("" : bootstrap's)
	// RegistryPackages are import paths of registry backends of the user's
	// own (each exports Backend() registry.Backend), listed before
	// Warren's in the generated main, so the first is the default.
	RegistryPackages []string
	Port             int      // default listen port (0: bootstrap's)
	Methods          []string // methods beyond the example, already checked with MethodName
	GRPC             bool     // serve gRPC too (//warren:grpc)
}

func newMethods(names []string, service string) []newMethod {
	var out []newMethod
	for _, n := range names {
		out = append(out, newMethod{Name: n, Annotations: defaultRoute(n, service)})
	}
	return out
}

type defaultSetting struct{ Key, Value string }

// New returns every file of a new service, by path relative to the
// repository root (services/NAME/…).
func New(o NewOptions) (map[string][]byte, error) {
	pkg, err := PackageName(o.Name)
	if err != nil {
		return nil, err
	}
	var defaults []defaultSetting
	if o.Port != 0 {
		defaults = append(defaults, defaultSetting{"listen", fmt.Sprintf(":%d", o.Port)})
	}
	if o.Registry != "" {
		defaults = append(defaults, defaultSetting{"registry", o.Registry})
	}
	data := newData(o, pkg, defaults)
	dir := "services/" + o.Name
	files := map[string][]byte{}
	for tmplName, fn := range newTemplates(o.Name) {
		b, err := render(tmplName, data)
		if err != nil {
			return nil, err
		}
		files[fn] = b
	}
	g, err := Generate(dir, o.Name, o.Module, map[string][]byte{"service.go": files["service.go"]}, nil)
	var probs Problems
	if errors.As(err, &probs) {
		return nil, probs // methods whose default routes conflict, say
	}
	if err != nil {
		return nil, fmt.Errorf("svcgen: the new service does not generate (a svcgen bug): %w", err)
	}
	for fn, b := range g.Files {
		files[fn] = b
	}
	out := map[string][]byte{}
	for fn, b := range files {
		out[dir+"/"+fn] = b
	}
	return out, nil
}

// newTemplates maps the templates `svcgen new` renders to the files they
// become in services/NAME.
func newTemplates(name string) map[string]string {
	return map[string]string{
		"service.go.tmpl":          "service.go",
		"service_test.go.tmpl":     "service_test.go",
		"conformance_test.go.tmpl": "conformance_test.go",
		"main.go.tmpl":             "cmd/" + name + "/main.go",
	}
}

// newData is what the templates of `svcgen new` are rendered with.
func newData(o NewOptions, pkg string, defaults []defaultSetting) map[string]any {
	return map[string]any{
		"Name":       o.Name,
		"Package":    pkg,
		"Module":     o.Module,
		"Framework":  FrameworkModule,
		"ImportPath": o.Module + "/services/" + o.Name,
		"Impl":       TypeName(o.Name) + "Service",
		"Snake":      snake(o.Name),
		"Methods":    newMethods(o.Methods, o.Name),
		"Defaults":   defaults,
		"GRPC":       o.GRPC,
		"Registries": mainRegistries(o.RegistryPackages),
	}
}

// mainRegistries are the backends a generated main lists, in order: the
// user's packages (already checked with RegistryAlias), then Warren's.
func mainRegistries(pkgs []string) []mainRegistry {
	var out []mainRegistry
	for _, p := range pkgs {
		alias, _ := RegistryAlias(p)
		out = append(out, mainRegistry{Alias: alias, Path: p})
	}
	for _, n := range MainRegistries {
		out = append(out, mainRegistry{Alias: n, Path: FrameworkModule + "/framework/registry/" + n})
	}
	return out
}
