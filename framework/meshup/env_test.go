package meshup

import (
	"os"
	"testing"
)

// MESH_PAGE= make up turns the page off (docs/mesh-page.md): an empty
// MESH_PAGE is a value, not "unset".
func TestEnvOrEmpty_AnEmptyMeshPageTurnsThePageOff(t *testing.T) {
	t.Setenv("MESH_PAGE", "")
	if got := envOrEmpty("MESH_PAGE", "127.0.0.1:7070"); got != "" {
		t.Fatalf("MESH_PAGE empty: page %q; want empty (no page)", got)
	}
	t.Setenv("MESH_PAGE", "127.0.0.1:7171")
	if got := envOrEmpty("MESH_PAGE", "127.0.0.1:7070"); got != "127.0.0.1:7171" {
		t.Fatalf("MESH_PAGE set: page %q", got)
	}
}

func TestEnvOrEmpty_AnUnsetMeshPageTakesTheDefault(t *testing.T) {
	t.Setenv("MESH_PAGE", "x") // restored after the test
	unsetenv(t, "MESH_PAGE")
	if got := envOrEmpty("MESH_PAGE", "127.0.0.1:7070"); got != "127.0.0.1:7070" {
		t.Fatalf("MESH_PAGE unset: page %q; want the default", got)
	}
}

func unsetenv(t *testing.T, k string) {
	t.Helper()
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}
