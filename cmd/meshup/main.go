// Command meshup runs the demo mesh: `make up` (embedded etcd), `make up
// REGISTRY=consul` or `REGISTRY=zookeeper`. The launcher is package
// framework/meshup; this main lists the registries it can run a dev server
// of, the first being the default. A module with a backend of its own
// builds its launcher the same way, listing its dev server
// (docs/registry.md, "Adding a backend").
package main

import (
	"github.com/warren-mesh/warren/framework/meshup"
	"github.com/warren-mesh/warren/framework/registry/consul/consuldev"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/framework/registry/zookeeper/zookeeperdev"
)

func main() {
	meshup.Main(etcddev.Backend(), consuldev.Backend(), zookeeperdev.Backend())
}
