package gen

import (
	"fmt"
	"path"
	"strings"
	"text/template"

	modpath "golang.org/x/mod/module"

	"github.com/warren-mesh/warren/templates"
)

// GoVersion is the go directive of a project svcgen init creates: the
// one Warren's own go.mod declares, the oldest Go that builds it.
const GoVersion = "1.26.8"

var projectTmpl = template.Must(template.New("project").ParseFS(templates.FS, "project/*.tmpl"))

// InitOptions are the choices of `svcgen init`.
type InitOptions struct {
	Module string // the project's module path: example.com/shop
	// Version of Warren the project requires (v0.4.0); with Replace, any
	// version (the replaced module's is used).
	Version string
	// Replace, when set, points the requirement at a Warren checkout (a
	// directory), as a replace directive.
	Replace string
}

// projectFiles maps each project template to the file it writes.
var projectFiles = map[string]string{
	"go.mod.tmpl":            "go.mod",
	"Makefile.tmpl":          "Makefile",
	"README.md.tmpl":         "README.md",
	"gitignore.tmpl":         ".gitignore",
	"compose.yaml.tmpl":      "deploy/compose/compose.yaml",
	"Dockerfile.tmpl":        "deploy/compose/Dockerfile",
	"compose-README.md.tmpl": "deploy/compose/README.md",
}

// Init returns every file of a new project, by path relative to its
// directory.
func Init(o InitOptions) (map[string][]byte, error) {
	if err := modpath.CheckPath(o.Module); err != nil {
		return nil, fmt.Errorf("module path %q: %w (e.g. example.com/shop or github.com/you/shop)", o.Module, err)
	}
	if o.Version == "" {
		return nil, fmt.Errorf("no Warren version to require")
	}
	if o.Replace == "" && !strings.HasPrefix(o.Version, "v") {
		return nil, fmt.Errorf("Warren version %q: want a module version such as v0.4.0", o.Version)
	}
	data := map[string]any{
		"Module":    o.Module,
		"Name":      path.Base(o.Module),
		"GoVersion": GoVersion,
		"Version":   o.Version,
		"Replace":   o.Replace,
	}
	out := map[string][]byte{}
	for tn, fn := range projectFiles {
		var b strings.Builder
		if err := projectTmpl.ExecuteTemplate(&b, tn, data); err != nil {
			return nil, fmt.Errorf("svcgen: template %s: %w", tn, err)
		}
		out[fn] = []byte(b.String())
	}
	return out, nil
}
