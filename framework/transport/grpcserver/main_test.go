package grpcserver_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
)

// The App tests run against real registries: an embedded etcd and a
// `consul agent -dev` (bin/consul), shared by the package's tests.
var (
	etcdSrv     *embedetcd.Server
	consulAgent *consultest.Agent
)

func TestMain(m *testing.M) {
	s, err := embedetcd.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		os.Exit(1)
	}
	etcdSrv = s
	if !consultest.Skipped() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		a, err := consultest.Start(ctx)
		cancel()
		if err != nil {
			s.Close()
			fmt.Fprintf(os.Stderr, "FAIL: these tests need a real Consul agent: %v\n(set %s=1 to skip them)\n", err, consultest.SkipEnv)
			os.Exit(1)
		}
		consulAgent = a
	}
	code := m.Run()
	if consulAgent != nil {
		consulAgent.Close()
	}
	s.Close()
	os.Exit(code)
}
