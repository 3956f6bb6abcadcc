package registry

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/go-kit/log"
)

// Backend is a registry implementation that a process selects by name
// (--registry=NAME), the way database/sql selects a driver, but explicitly:
// there is no init() registration and no global table. A main lists the
// backends it links in and hands the list to bootstrap, so bootstrap,
// config and the dev mesh never import a backend package:
//
//	bootstrap.Main("payment", version, build,
//		bootstrap.WithRegistries(etcd.Backend(), consul.Backend(), memory.Backend()))
//
// A backend package exports a function returning its Backend. Adding a
// backend touches only that package and the lists that select it
// (docs/registry.md, "Adding a backend").
type Backend struct {
	// Name selects the backend and prefixes its flags: --NAME-… on the
	// command line, WARREN_NAME_… in the environment. It must be a valid
	// service-style name (ValidName).
	Name string
	// Usage describes the backend in a few words, for --help.
	Usage string
	// Bind adds the backend's own flags to fs, every one named NAME-…, and
	// returns the backend's settings, which hold the flag values once fs
	// is parsed. It is called once per parse for every listed backend (so
	// --help shows them all); only the selected one is validated and
	// opened.
	Bind func(fs *flag.FlagSet) Settings
}

// Settings are one backend's parsed flags.
type Settings interface {
	// Validate reports the first value that cannot work, naming its flag.
	Validate() error
	// Open connects to the backend. Like the backends' constructors it
	// should not wait for the server to answer, so a service can start
	// while its registry is still coming up.
	Open(ctx context.Context, o OpenOptions) (Registry, error)
}

// OpenOptions is what the process gives every backend it opens. A zero
// field means: discard (Logger) or ignore (Observer).
type OpenOptions struct {
	Logger   log.Logger
	Observer Observer
}

// ErrUnknownBackend is returned (wrapped) when no listed backend has the
// asked-for name.
var ErrUnknownBackend = errors.New("unknown registry backend")

// Backends is the list of backends a process links in. The first is the
// default.
type Backends []Backend

// Lookup returns the backend called name. The error wraps
// ErrUnknownBackend and lists the names there are.
func (bs Backends) Lookup(name string) (Backend, error) {
	for _, b := range bs {
		if b.Name == name {
			return b, nil
		}
	}
	if len(bs) == 0 {
		return Backend{}, fmt.Errorf("%w %q: this program links in no registry backend", ErrUnknownBackend, name)
	}
	return Backend{}, fmt.Errorf("%w %q: want %s", ErrUnknownBackend, name, bs.Names())
}

// Names lists the backends' names for messages: "etcd, consul or memory".
func (bs Backends) Names() string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	switch len(names) {
	case 0:
		return "(none)"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Validate reports a list that cannot be used: a backend without a valid
// name or without Bind, or two backends of one name.
func (bs Backends) Validate() error {
	seen := map[string]bool{}
	for _, b := range bs {
		switch {
		case !ValidName(b.Name):
			return fmt.Errorf("registry backend %q: name must match %s", b.Name, nameRE)
		case b.Bind == nil:
			return fmt.Errorf("registry backend %q: no Bind", b.Name)
		case seen[b.Name]:
			return fmt.Errorf("registry backend %q listed twice", b.Name)
		}
		seen[b.Name] = true
	}
	return nil
}

// BindAll binds every backend's flags to fs and returns their settings by
// name. It fails if a backend adds a flag outside its NAME-… namespace, so
// two backends can never fight over one flag or variable.
func (bs Backends) BindAll(fs *flag.FlagSet) (map[string]Settings, error) {
	if err := bs.Validate(); err != nil {
		return nil, err
	}
	out := make(map[string]Settings, len(bs))
	for _, b := range bs {
		// Bind into a scratch set first: a clash must be an error, not the
		// panic flag.FlagSet gives for a redefined flag.
		own := flag.NewFlagSet(b.Name, flag.ContinueOnError)
		s := b.Bind(own)
		if s == nil {
			return nil, fmt.Errorf("registry backend %q: Bind returned no settings", b.Name)
		}
		var bad []string
		own.VisitAll(func(f *flag.Flag) {
			if !strings.HasPrefix(f.Name, b.Name+"-") || fs.Lookup(f.Name) != nil {
				bad = append(bad, "--"+f.Name)
			}
		})
		if len(bad) > 0 {
			return nil, fmt.Errorf("registry backend %q: flags %s must start with --%s- and be its own", b.Name, strings.Join(bad, ", "), b.Name)
		}
		own.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
		out[b.Name] = s
	}
	return out, nil
}

// ListFlag is a flag.Value holding a comma-separated list, for backends'
// list settings (--etcd-endpoints=a:2379,b:2379). Spaces around items are
// dropped, and so are empty items.
type ListFlag struct{ P *[]string }

// String implements flag.Value.
func (l ListFlag) String() string {
	if l.P == nil {
		return ""
	}
	return strings.Join(*l.P, ",")
}

// Set implements flag.Value; a later Set replaces the list.
func (l ListFlag) Set(v string) error {
	*l.P = nil
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l.P = append(*l.P, part)
		}
	}
	return nil
}
