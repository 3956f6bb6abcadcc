package clusters

import (
	"os"
	"testing"

	"github.com/warren-mesh/warren/internal/etcdcluster"
)

func TestMain(m *testing.M) {
	etcdcluster.RunIfMember() // this binary is also every etcd member
	os.Exit(m.Run())
}
