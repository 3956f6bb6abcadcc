// Command warren is the operator's tool for a Warren mesh: ls, watch,
// page, nginx and xds over any registry it lists (docs/mesh-page.md,
// docs/edge.md). The commands are package framework/warrencli; this main
// only lists the backends, the first being the default of --registry. A
// module with a backend of its own builds its warren the same way, listing
// it (docs/registry.md, "Adding a backend").
package main

import (
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
	"github.com/warren-mesh/warren/framework/warrencli"
)

func main() {
	warrencli.Main(etcd.Backend(), consul.Backend(), zookeeper.Backend(), kubernetes.Backend())
}
