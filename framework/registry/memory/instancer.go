package memory

import (
	"sync"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// instancer is one caller's watch of a service on the Server: a cache of
// its own, which the Server updates with every change of the service, as
// an etcd instancer's watch updates its cache. Nothing is shared between
// two instancers, so a channel registered through both is two
// subscriptions, and stopping one (from anywhere, a subscriber's handler
// too) leaves the other alone.
type instancer struct {
	*registry.Cache           // Register, Deregister, State and their Delta forms
	reg             *Registry // whose Close stops it
	service         string
	once            sync.Once
}

var (
	_ sd.Instancer            = (*instancer)(nil)
	_ registry.DeltaInstancer = (*instancer)(nil)
)

// Stop ends every subscription made through this instancer; the others
// of the service go on. Subscribers keep the last set they got, and
// State (and a Register after Stop, once) gives the newest set one of
// them got. A subscriber may call it from its handler. It is idempotent.
func (in *instancer) Stop() {
	in.once.Do(func() {
		in.Cache.Stop()
		in.reg.forget(in)
	})
}
