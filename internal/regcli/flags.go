// Package regcli is the registry half of the `warren` command: `warren ls`
// prints what discovery holds as a table, `warren watch` streams its
// changes. Both open the registry with the flags and WARREN_* variables a
// service takes (--registry and the backend's own), read only, and work
// on every backend the command links in.
package regcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/registry"
)

// Registry is the registry part of a command line: --registry and every
// backend's flags, bound to a flag set.
type Registry struct {
	backends registry.Backends
	name     string
	settings map[string]registry.Settings
}

// BindRegistry adds --registry (default: the first backend) and every
// backend's own flags to fs.
func BindRegistry(fs *flag.FlagSet, backends registry.Backends) (*Registry, error) {
	if len(backends) == 0 {
		return nil, errors.New("no registry backend linked in")
	}
	r := &Registry{backends: backends, name: backends[0].Name}
	fs.StringVar(&r.name, "registry", r.name, "service registry: "+backends.Names())
	s, err := backends.BindAll(fs)
	if err != nil {
		return nil, err
	}
	r.settings = s
	return r, nil
}

// Name is the selected backend.
func (r *Registry) Name() string { return r.name }

// Where says what r, opened from these flags, reads: for a registry with
// a namespace (kubernetes) the namespace it resolved, else the selected
// backend's settings (addresses, root or prefix; no secrets).
func (r *Registry) Where(opened registry.Registry) string {
	if ns, ok := opened.(interface{ Namespace() string }); ok {
		return fmt.Sprintf("the %s registry, namespace %q", r.name, ns.Namespace())
	}
	if s, ok := r.settings[r.name].(fmt.Stringer); ok {
		return s.String()
	}
	return "the " + r.name + " registry"
}

// Open validates the selected backend's flags and connects. It registers
// nothing: the caller only reads. A failure names the backend once
// ("etcd registry …"): backends name themselves, others get the prefix.
func (r *Registry) Open(ctx context.Context) (registry.Registry, error) {
	if _, err := r.backends.Lookup(r.name); err != nil {
		return nil, usagef("--registry: %v", err)
	}
	s := r.settings[r.name]
	if err := s.Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	reg, err := s.Open(ctx, registry.OpenOptions{})
	if err != nil && !strings.HasPrefix(err.Error(), r.name+" registry") {
		err = fmt.Errorf("%s registry: %w", r.name, err)
	}
	return reg, err
}

// Parse parses args and the WARREN_* environment into fs, as a service
// does (a flag wins over its variable). usage is the line before the flag
// list that -h prints to helpOut (flag.ErrHelp is returned then): the
// command's stdout, so `warren ls -h | grep etcd` filters it. A bad flag
// or value is a Usage error of one line that names it and the form it
// wants, with no flag list above it, for the caller's stderr.
func Parse(fs *flag.FlagSet, args []string, helpOut io.Writer, usage string) error {
	err := config.ParseFlags(fs, flagsFirst(fs, args))
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(helpOut, "%s\n\nEvery flag can also be set with its WARREN_* variable (--etcd-endpoints: %s).\n\n", usage, config.EnvName("etcd-endpoints"))
		fs.SetOutput(helpOut)
		fs.PrintDefaults()
		return err
	case err != nil:
		return Usage{Msg: err.Error()}
	}
	return nil
}

// Usage reports a bad command line: the message and exit code 2.
type Usage struct{ Msg string }

func (u Usage) Error() string { return u.Msg }

// usagef returns a Usage error.
func usagef(format string, args ...any) error {
	return Usage{Msg: strings.TrimSpace(fmt.Sprintf(format, args...))}
}

// flagsFirst moves the flags of args before its other arguments, so that
// `warren ls user --registry=kubernetes` reads as `warren ls
// --registry=kubernetes user` (the flag package stops at the first
// argument that is not a flag, and took the flags for service names).
// A flag of fs that takes a value and is written without "=" takes the
// next argument with it; "--" ends the flags, as for the flag package.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // unknown: the parser says so
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	if len(rest) == 0 {
		return flags
	}
	return append(append(flags, "--"), rest...)
}
