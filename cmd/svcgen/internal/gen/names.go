package gen

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/kebab"
)

// reservedNames cannot name a service: directories of the repository, or
// packages whose name the generated code already uses for an import.
var reservedNames = map[string]string{
	"framework":     "is the framework's directory",
	"internal":      "has a special meaning to the go command",
	"cmd":           "is the commands' directory",
	"templates":     "is svcgen's template directory",
	"testdata":      "is ignored by the go command",
	"vendor":        "has a special meaning to the go command",
	"main":          "cannot be imported",
	"context":       "clashes with the standard package the generated code imports",
	"http":          "clashes with net/http, which the generated code imports",
	"url":           "clashes with net/url, which the generated code imports",
	"strconv":       "clashes with the standard package the generated code imports",
	"errors":        "clashes with the standard package the generated tests import",
	"strings":       "clashes with the standard package the generated code imports",
	"testing":       "clashes with the standard package the generated tests import",
	"time":          "clashes with the standard package the generated tests import",
	"os":            "clashes with the standard package the generated main imports",
	"log":           "clashes with go-kit's log, which the generated code imports",
	"endpoint":      "clashes with go-kit's endpoint, which the generated code imports",
	"client":        "clashes with framework/client, which the generated code imports",
	"registry":      "clashes with framework/registry, which the generated code imports",
	"httptransport": "clashes with framework/httptransport, which the generated code imports",
	"bootstrap":     "clashes with framework/bootstrap, which the generated main imports",
	"svcerr":        "clashes with framework/svcerr, which the generated code imports",
	"servicetest":   "clashes with framework/servicetest, which the generated tests import",
}

// generatedNames are the names that the generated files importing the
// service package (cmd/NAME/main.go, conformance_test.go) use unqualified:
// the packages they import and the variables and parameters they declare.
// A service package of such a name would be redeclared or shadowed there
// (`svcgen new memory`: "memory redeclared in this block"). The names
// come from rendering the templates themselves, so a template that
// imports or declares something new reserves it at once. The value is
// the reason, as the error shows it.
var generatedNames = sync.OnceValue(func() map[string]string {
	const probe = "svcgenprobe" // a name none of the templates uses
	out := map[string]string{}
	for _, grpc := range []bool{false, true} {
		o := NewOptions{Name: probe, Module: "example.com/m", GRPC: grpc, Port: 1, Registry: MainRegistries[0]}
		data := newData(o, probe, []defaultSetting{{"listen", ":1"}})
		tmpls := newTemplates(probe)
		for _, tn := range slices.Sorted(maps.Keys(tmpls)) {
			fn := path.Base(tmpls[tn])
			b, err := render(tn, data)
			if err != nil {
				panic(err) // the templates are svcgen's own; TestNew_GoldenFiles renders them too
			}
			f, err := parser.ParseFile(token.NewFileSet(), fn, b, parser.SkipObjectResolution)
			if err != nil {
				panic(err)
			}
			if f.Name.Name == probe {
				continue // the service package itself: its imports do not clash with its name
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				n := path.Base(p)
				if imp.Name != nil {
					n = imp.Name.Name
				}
				if n != probe && out[n] == "" {
					out[n] = fmt.Sprintf("the package %s (%s) that the generated %s imports", n, p, fn)
				}
			}
			selected := map[*ast.Ident]bool{f.Name: true}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ImportSpec:
					return false
				case *ast.SelectorExpr:
					selected[n.Sel] = true
				case *ast.Ident:
					if !selected[n] && n.Name != probe && n.Name != "_" && out[n.Name] == "" {
						out[n.Name] = fmt.Sprintf("the name %s that the generated %s declares or uses (a variable, parameter or function there)", n.Name, fn)
					}
				}
				return true
			})
		}
	}
	return out
})

// predeclared are Go's predeclared identifiers; a package of that name
// would shadow them in its own importers.
var predeclared = map[string]bool{
	"any": true, "bool": true, "byte": true, "comparable": true, "complex64": true, "complex128": true,
	"error": true, "float32": true, "float64": true, "int": true, "int8": true, "int16": true,
	"int32": true, "int64": true, "rune": true, "string": true, "uint": true, "uint8": true,
	"uint16": true, "uint32": true, "uint64": true, "uintptr": true, "true": true, "false": true,
	"iota": true, "nil": true, "append": true, "cap": true, "clear": true, "close": true,
	"complex": true, "copy": true, "delete": true, "imag": true, "len": true, "make": true,
	"max": true, "min": true, "new": true, "panic": true, "print": true, "println": true,
	"real": true, "recover": true,
}

// PackageName checks a service name and returns its Go package name: the
// name without dashes ("fraud-check" → fraudcheck). The error says what is
// wrong and what would be accepted.
func PackageName(name string) (string, error) {
	const rule = "use 1 to 63 lower-case letters, digits and single dashes, starting with a letter and ending with a letter or digit (an RFC 1123 DNS label, e.g. payment, fraud-check)"
	switch {
	case strings.HasSuffix(name, "-") && registry.ValidName(strings.TrimRight(name, "-")):
		// The one mistake named on its own: registry.ValidName refuses it too.
		return "", fmt.Errorf("service name %q ends with a dash, which a DNS label may not: %s", name, rule)
	case !registry.ValidName(name):
		return "", fmt.Errorf("service name %q is not valid: %s", name, rule)
	case strings.Contains(name, "--"):
		// Valid in RFC 1123, but reserved for encodings (xn--) and lost in
		// the Go names: a--b and a-b would both be package ab, type AB.
		return "", fmt.Errorf("service name %q has two dashes in a row: %s", name, rule)
	}
	pkg := strings.ReplaceAll(name, "-", "")
	if why, ok := reservedNames[name]; ok {
		return "", fmt.Errorf("service name %q is reserved: it %s; pick another name", name, why)
	}
	if why, ok := reservedNames[pkg]; ok {
		return "", fmt.Errorf("service name %q maps to Go package %s, which %s; pick another name", name, pkg, why)
	}
	switch {
	case token.IsKeyword(pkg):
		return "", fmt.Errorf("service name %q maps to Go package %s, which is a Go keyword; pick another name", name, pkg)
	case !token.IsIdentifier(pkg):
		return "", fmt.Errorf("service name %q maps to %q, which is not a Go identifier; pick another name", name, pkg)
	case predeclared[pkg]:
		return "", fmt.Errorf("service name %q maps to Go package %s, which would shadow Go's predeclared %s; pick another name", name, pkg, pkg)
	}
	if why, ok := generatedNames()[pkg]; ok {
		if pkg == name {
			return "", fmt.Errorf("service name %q would clash with %s; pick another name", name, why)
		}
		return "", fmt.Errorf("service name %q maps to Go package %s, which would clash with %s; pick another name", name, pkg, why)
	}
	return pkg, nil
}

// TypeName is name in CamelCase: "fraud-check" → FraudCheck.
func TypeName(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// Kebab turns a method name into a path segment: GetBalance → get-balance,
// CreateHTTPServer → create-http-server.
func Kebab(s string) string { return kebab.Case(s) }

// snake is name with dashes as underscores, for error codes.
func snake(name string) string { return strings.ReplaceAll(name, "-", "_") }

// MethodName checks a method name given to `svcgen new --methods` and
// returns it exported ("refund" → Refund).
func MethodName(s string) (string, error) {
	if s == "" || !token.IsIdentifier(s) {
		return "", fmt.Errorf("method %q is not a Go identifier", s)
	}
	m := strings.ToUpper(s[:1]) + s[1:]
	if !token.IsExported(m) {
		return "", fmt.Errorf("method %q must start with a letter", s)
	}
	if reservedMethods[m] != "" {
		return "", fmt.Errorf("method %s: %s", m, reservedMethods[m])
	}
	return m, nil
}

// reservedMethods cannot be Service methods.
var reservedMethods = map[string]string{
	"Close": "the generated Client has a Close method of its own; name the method differently",
}

// verbRoutes are the routes `svcgen new --methods` gives a method whose
// name starts with a CRUD verb; any other method gets gen's default,
// POST /kebab-name.
var verbRoutes = []struct {
	verb, method string
	item         bool // addresses one item: /resource/{id}
	idempotent   bool
}{
	{"Get", "GET", true, false},
	{"List", "GET", false, false},
	{"Delete", "DELETE", true, true},
	{"Update", "PUT", true, true},
}

// newMethod is a method `svcgen new --methods` writes into service.go,
// with the annotation lines its name calls for.
type newMethod struct {
	Name        string
	Annotations []string
}

// defaultRoute returns the annotation lines of a new method: Get, List,
// Delete and Update (alone or followed by a resource: GetInvoice,
// ListInvoices) get REST routes on the resource (the service's name when
// the method names none); the others none (POST /kebab-name).
func defaultRoute(method, service string) []string {
	for _, v := range verbRoutes {
		rest, ok := strings.CutPrefix(method, v.verb)
		if !ok || (rest != "" && !unicode.IsUpper(rune(rest[0]))) {
			continue
		}
		resource := service
		if rest != "" {
			resource = Kebab(rest)
		}
		path := "/" + resource
		if v.item {
			path += "/{id}"
		}
		lines := []string{"//warren:http " + v.method + " " + path}
		if v.idempotent {
			lines = append(lines, "//warren:idempotent")
		}
		return lines
	}
	return nil
}
