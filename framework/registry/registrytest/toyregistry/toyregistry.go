// Package toyregistry is a registry backend added the way a third party
// would add one: this package alone, plus the main (or test) that lists it.
// Nothing in bootstrap, config or the dev mesh knows it exists.
//
// It keeps its instances in this process (it wraps the memory backend)
// and has flags of its own: --toy-label, which its Registry reports, so a
// test can see that the flag reached the backend that bootstrap opened by
// name, and --toy-open-error, an error for Open to fail with.
package toyregistry

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// Name is the backend's name: --registry=toy.
const Name = "toy"

// Backend returns the toy backend for bootstrap.WithRegistries.
func Backend() registry.Backend {
	return registry.Backend{Name: Name, Usage: "a toy that proves backends plug in", Bind: bind}
}

type settings struct{ label, openError string }

func bind(fs *flag.FlagSet) registry.Settings {
	s := &settings{label: "plain"}
	fs.StringVar(&s.label, "toy-label", s.label, "label the toy registry reports")
	fs.StringVar(&s.openError, "toy-open-error", "", "an error for Open to fail with (tests)")
	return s
}

func (s *settings) Validate() error {
	if s.label == "" {
		return fmt.Errorf("--toy-label is empty")
	}
	return nil
}

func (s *settings) Open(ctx context.Context, _ registry.OpenOptions) (registry.Registry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.openError != "" {
		return nil, errors.New(s.openError)
	}
	return &Registry{Registry: memory.New(), Label: s.label}, nil
}

// Registry is the toy registry: the memory backend and a label.
type Registry struct {
	*memory.Registry
	// Label is the value of --toy-label.
	Label string
}
