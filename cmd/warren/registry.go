package main

import (
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
	"github.com/warren-mesh/warren/internal/regcli"
)

// registryCommands read discovery (internal/regcli, internal/meshview).
func registryCommands() []command {
	return []command{
		{"ls", regcli.LsUsage, regcli.Ls},
		{"watch", regcli.WatchUsage, regcli.Watch},
		{"page", regcli.PageUsage, regcli.Page},
	}
}

// backends are the registries the registry subcommands can open; the
// first is the default of --registry. Add a backend here.
func backends() registry.Backends {
	return registry.Backends{etcd.Backend(), consul.Backend(), zookeeper.Backend(), kubernetes.Backend()}
}
