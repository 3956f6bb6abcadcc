package meshup

import (
	"bytes"
	"testing"
)

// docs/demo.md and README.md: `make up` starts two instances of every
// service on the first registry backend (etcd) and serves the live mesh
// page on http://127.0.0.1:7070/. Flags and variables that override
// these were tested; the defaults themselves were not.
func TestParseFlags_DefaultsAreTheDocumentedOnes(t *testing.T) {
	for _, k := range []string{"REGISTRY", "MESH_PAGE", "EDGE"} {
		t.Setenv(k, "x") // restored after the test
		unsetenv(t, k)
	}
	var out, errOut bytes.Buffer
	f, code := parseFlags(nil, []string{"etcd", "consul", "zookeeper"}, &out, &errOut)
	if code != -1 || out.Len()+errOut.Len() != 0 {
		t.Fatalf("no flags: code %d, output %q; want to go on quietly", code, out.String()+errOut.String())
	}
	if f.instances != 2 || f.registry != "etcd" || f.page != "127.0.0.1:7070" || f.edge != "" || f.state != "" {
		t.Errorf("defaults %+v; want 2 instances, registry etcd, page 127.0.0.1:7070, no edge, the default state directory", f)
	}
	if err := checkInstances(f.instances); err != nil {
		t.Errorf("the default -instances is refused: %v", err)
	}
}
