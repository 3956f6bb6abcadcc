package consultest

import (
	"errors"
	"strings"
	"testing"
)

// A project of its own (make up REGISTRY=consul of a generated project)
// has no `make bin/consul`: with no binary anywhere, the error says what
// works everywhere first — consul on PATH, or WARREN_CONSUL_BIN.
func TestBinary_NoneFoundSaysHowToProvideOneOutsideWarrensRepository(t *testing.T) {
	t.Setenv("WARREN_CONSUL_BIN", "")
	t.Setenv("PATH", t.TempDir())
	t.Chdir(t.TempDir()) // no go.mod with bin/consul above it
	_, err := Binary()
	if !errors.Is(err, ErrNoBinary) {
		t.Fatalf("Binary() = %v, want ErrNoBinary", err)
	}
	for _, want := range []string{"consul on PATH", "WARREN_CONSUL_BIN", "in Warren's own repository: make bin/consul"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
