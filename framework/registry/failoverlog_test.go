package registry_test

import (
	"strings"
	"testing"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// After an episode with no instance in any source (warned), the local
// source's return is said too: only the very first publication on the
// local source is quiet.
func TestReportFailover_ReturnAfterNoSourceHadAnInstanceIsLogged(t *testing.T) {
	local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
	local.Update(sd.Event{Instances: []string{"l1"}})
	remote.Update(sd.Event{Instances: []string{"r1"}})
	f := registry.NewFailover(local, remote)
	defer f.Stop()
	logs, obs, waitFor := reportFailover(t, f)
	waitFor("dca reported serving", func() bool { return obs.is("user/dca") })
	// Each change is waited for: changes faster than the two readers
	// may coalesce.
	local.Update(sd.Event{})
	waitState(t, f, []string{"r1"}, 1)
	remote.Update(sd.Event{})
	waitState(t, f, nil, -1)
	waitFor("no instance anywhere, warned", func() bool {
		return strings.Contains(logs.String(), `msg="no datacenter has an instance of the service"`) && !obs.is("user/dca")
	})
	local.Update(sd.Event{Instances: []string{"l2"}})
	waitFor("the local datacenter's return logged", func() bool {
		return strings.Contains(logs.String(), `msg="discovery back to the local datacenter" service=user datacenter=dca from=none`) && obs.is("user/dca")
	})
}
