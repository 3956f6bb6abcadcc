package grpcserver_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
)

// regs are the real registries the App tests run against: an embedded
// etcd and a `consul agent -dev` (bin/consul), shared by the package.
var regs *grpctest.Registries

func TestMain(m *testing.M) {
	r, err := grpctest.StartRegistries()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	regs = r
	code := m.Run()
	r.Close()
	os.Exit(code)
}
