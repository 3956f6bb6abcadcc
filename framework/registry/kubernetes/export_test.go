package kubernetes

import (
	"testing"

	"k8s.io/client-go/rest"
)

// SetInClusterConfig makes New see f as the Pod's service account until
// t ends.
func SetInClusterConfig(t testing.TB, f func() (*rest.Config, error)) {
	old := inClusterConfig
	inClusterConfig = f
	t.Cleanup(func() { inClusterConfig = old })
}
