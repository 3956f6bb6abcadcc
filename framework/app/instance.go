package app

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/warren-mesh/warren/framework/registry"
)

// MetricsMetadataKey is the instance metadata key under which a service
// with a debug listener publishes its /metrics URL.
const MetricsMetadataKey = "metrics"

// RegisteredMetadataKey is the instance metadata key under which the App
// publishes when it first registered (RFC 3339, UTC, whole seconds), so
// `warren ls` and the mesh page can say how long an instance has been in
// discovery.
const RegisteredMetadataKey = "registered"

// instanceFor builds the published instance from the options and the
// transports' bound addresses: one endpoint per transport, in order.
func (a *App) instanceFor(addrs []net.Addr) (registry.Instance, error) {
	advHost, advPort, err := splitAdvertise(a.opts.advertise)
	if err != nil {
		return registry.Instance{}, err
	}
	eps := make([]string, len(addrs))
	var host0 string
	var port0 int
	for i, addr := range addrs {
		port := advPort
		if i > 0 || port == 0 { // an advertised port is the first transport's
			port = addr.(*net.TCPAddr).Port
		}
		host := advertisedHost(advHost, addr.(*net.TCPAddr))
		if i == 0 {
			host0, port0 = host, port
		}
		eps[i] = registry.EndpointURL(a.servers[i].Scheme(), host, port)
	}
	id := a.opts.id
	if id == "" {
		id = registry.DefaultID(a.name, host0, port0)
	}
	inst := registry.Instance{
		ID: id, Name: a.name, Endpoints: eps,
		Version: a.opts.version, Zone: a.opts.zone, Weight: a.opts.weight,
		Tags: a.opts.tags, Metadata: a.opts.metadata,
	}
	if err := inst.Validate(); err != nil {
		return registry.Instance{}, fmt.Errorf("app: %w", err)
	}
	return inst, nil
}

// splitAdvertise parses WithAdvertise: "host", "host:port", "host:0".
func splitAdvertise(adv string) (string, int, error) {
	if adv == "" {
		return "", 0, nil
	}
	h, p, err := net.SplitHostPort(adv)
	if err != nil {
		return adv, 0, nil // a bare host (or IPv6 literal) without a port
	}
	if p == "" {
		return h, 0, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("app: advertised address %q: bad port %q", adv, p)
	}
	return h, n, nil
}

// advertisedHost is the advertised host when set, else the listen IP when
// it is a specific address, else the first non-loopback interface address.
func advertisedHost(adv string, addr *net.TCPAddr) string {
	switch {
	case adv != "":
		return adv
	case !addr.IP.IsUnspecified():
		return addr.IP.String()
	}
	return firstInterfaceAddr()
}

// firstInterfaceAddr is the default advertised host of a process listening
// on all interfaces: the first non-loopback unicast IPv4 address, else
// loopback (a single machine).
func firstInterfaceAddr() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// debugHostPort is the debug listener's address as others reach it: its
// own IP when bound to one, else the advertised host.
func debugHostPort(addr *net.TCPAddr, advertised string) string {
	host := advertised
	if !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// loopbackAdvertised reports whether the advertised host adv (as given,
// "" when none was) is a loopback address while bound, a transport's
// bound address, is not: the service is meant to be reached from other
// hosts, but they would discover an address that reaches only themselves.
// The self-check cannot see it, since on this host loopback does reach
// the process. An all-loopback setup (make up) is not a mistake.
func loopbackAdvertised(adv string, bound *net.TCPAddr) bool {
	return adv != "" && loopbackHost(adv) && !bound.IP.IsLoopback()
}

// loopbackHost reports whether h names this host's loopback interface:
// a loopback IP, localhost, or a name under .localhost (RFC 6761), which
// resolvers answer with loopback without asking DNS.
func loopbackHost(h string) bool {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
