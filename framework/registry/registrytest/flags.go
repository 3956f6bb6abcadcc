package registrytest

import (
	"flag"
	"io"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// ParseBackend binds b's flags to a fresh flag set, as a command does,
// parses args and returns b's settings, so a backend's tests can check
// what its flags open and refuse without writing the binding again.
func ParseBackend(t testing.TB, b registry.Backend, args ...string) registry.Settings {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	all, err := registry.Backends{b}.BindAll(fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return all[b.Name]
}
