package regcli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// refusing is a backend of the user's own (docs/registry.md, adding a
// backend) whose Open fails with msg, as one that cannot reach its server.
type refusing struct{ msg string }

func (refusing) Validate() error { return nil }
func (s refusing) Open(context.Context, registry.OpenOptions) (registry.Registry, error) {
	return nil, errors.New(s.msg)
}

// TestRegistry_AnOpenFailureNamesTheBackendOnce: the error of a backend
// that does not say its name gets "NAME registry: " in front, and one that
// does is left as it is (no "hreg registry: hreg registry: …"). Mutation
// audit M6: kills the prefix dropped, and the check for a name already
// there dropped.
func TestRegistry_AnOpenFailureNamesTheBackendOnce(t *testing.T) {
	for msg, want := range map[string]string{
		"dial tcp 127.0.0.1:1: connection refused":         "hreg registry: dial tcp 127.0.0.1:1: connection refused",
		"hreg registry at 127.0.0.1:1: connection refused": "hreg registry at 127.0.0.1:1: connection refused",
	} {
		b := registry.Backend{Name: "hreg", Usage: "a test backend", Bind: func(*flag.FlagSet) registry.Settings { return refusing{msg} }}
		var out, errOut bytes.Buffer
		err := Ls(t.Context(), Env{Stdout: &out, Stderr: &errOut, Backends: registry.Backends{b}}, []string{"user"})
		if err == nil || err.Error() != want {
			t.Errorf("Open failing with %q: err = %v, want %q", msg, err, want)
		}
		var u Usage
		if errors.As(err, &u) || strings.Contains(out.String(), "SERVICE") {
			t.Errorf("Open failing with %q: err %v is a usage error or a table was printed (%q)", msg, err, out.String())
		}
	}
}
