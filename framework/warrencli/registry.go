package warrencli

import (
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
