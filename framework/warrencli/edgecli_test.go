package warrencli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// TestEdge_CommandLineMistakesAreNamedBeforeAnythingRuns: a bad
// --services name and stray arguments are usage errors (exit 2) that say
// what is wrong, before the registry is opened or anything is written;
// and a registry that lists no service, with none named, is an error
// (exit 1) rather than an edge that follows nothing. Each case has a
// deadline: a command that ran instead of refusing ends with it (exit 0).
// Mutation audit M6: kills open's name check, parseEdge's stray-argument
// check and open's empty-list check removed.
func TestEdge_CommandLineMistakesAreNamedBeforeAnythingRuns(t *testing.T) {
	out := filepath.Join(t.TempDir(), "upstreams.conf")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nginx", "--registry=memory", "--services", "User!", "--out", out}, 2,
			"warren nginx: --services: \"User!\" is not a service name (a lower-case DNS label) (warren nginx -h for help)\n"},
		{[]string{"xds", "--registry=memory", "--services", "User!", "--listen", "127.0.0.1:0"}, 2,
			"warren xds: --services: \"User!\" is not a service name"},
		{[]string{"nginx", "--registry=memory", "--services", "user", "--out", out, "extra"}, 2,
			"warren nginx: unexpected arguments [\"extra\"] (warren nginx -h for help)\n"},
		{[]string{"nginx", "--registry=memory", "--out", out}, 1,
			"warren nginx: the registry lists no service yet: name them with --services\n"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var stdout, stderr bytes.Buffer
		code := Run(ctx, tc.args, &stdout, &stderr, registry.Backends{memory.Backend()})
		cancel()
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("warren %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
