package consul

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
)

// How an Instance maps to a Consul service and back:
//
//	Instance.ID, Name, Tags    → Service ID, Service, Tags
//	primary endpoint           → Service Address, Port; scheme in Meta "scheme"
//	all Endpoints              → Meta "endpoints", comma-separated
//	Version, Zone, Weight      → Meta "version", "zone", "weight" (+ Weights)
//	Metadata                   → Meta, keys as they are
//
// The primary endpoint (registry.Instance.HostPort: the HTTP one when there
// is one) keeps Address, Port and "scheme" meaning what they meant in
// round 1, so round-1 readers keep calling the HTTP endpoint during a
// rolling upgrade, and round-1 services (no "endpoints") read back as one
// endpoint built from them.

// Meta keys the Registry writes next to the instance's own Metadata. They
// are reserved: an instance whose Metadata uses one is refused.
const (
	metaVersion   = "version"
	metaZone      = "zone"
	metaWeight    = "weight"
	metaScheme    = "scheme"
	metaEndpoints = "endpoints"
	// metaDC is never stored; instancers add it to Metadata from the node's
	// datacenter.
	metaDC = "dc"
)

var reservedMeta = []string{metaVersion, metaZone, metaWeight, metaScheme, metaEndpoints, metaDC}

// Consul's own limits on service meta (agent/structs.ValidateServiceMetadata).
var metaKeyRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// maxWeight is the largest weight the agent takes: it refuses a passing
// weight above it ("DNS Weight must be between 0 and 65535", checked on
// Consul 1.20) because it serves weights as the 16-bit weight of DNS SRV
// records.
const maxWeight = 65535

const (
	maxMetaKeyLen   = 128
	maxMetaValueLen = 512
	maxMetaPairs    = 64
)

// serviceRegistration renders inst as a Consul service, without the check.
// inst has passed validate.
func serviceRegistration(inst registry.Instance) *api.AgentServiceRegistration {
	meta := maps.Clone(inst.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	if inst.Version != "" {
		meta[metaVersion] = inst.Version
	}
	if inst.Zone != "" {
		meta[metaZone] = inst.Zone
	}
	if inst.Weight > 0 {
		meta[metaWeight] = strconv.Itoa(inst.Weight)
	}
	meta[metaEndpoints] = strings.Join(inst.Endpoints, ",")
	scheme, _, _ := strings.Cut(primaryEndpoint(inst), "://")
	if scheme != "http" {
		meta[metaScheme] = scheme
	}
	host, port := hostPort(inst.HostPort())
	return &api.AgentServiceRegistration{
		ID:      inst.ID,
		Name:    inst.Name,
		Tags:    slices.Clone(inst.Tags),
		Address: host,
		Port:    port,
		Meta:    meta,
		Weights: &api.AgentWeights{Passing: inst.EffectiveWeight(), Warning: 1},
	}
}

// primaryEndpoint is the endpoint whose host:port is inst.HostPort().
func primaryEndpoint(inst registry.Instance) string {
	hp := inst.HostPort()
	for _, ep := range inst.Endpoints {
		if strings.HasSuffix(ep, "://"+hp) {
			return ep
		}
	}
	return ""
}

func hostPort(hp string) (string, int) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// toInstance is the inverse of serviceRegistration, plus the datacenter;
// it also reads go-micro's registrations (gomicro.go).
// A service registered by round 1 (no "endpoints" meta) gets the one
// endpoint its address, port and scheme name, the node's address standing
// in for an empty service address.
func toInstance(e *api.ServiceEntry) (registry.Instance, error) {
	if e == nil || e.Service == nil {
		return registry.Instance{}, fmt.Errorf("%w: empty service entry", registry.ErrInvalidInstance)
	}
	s := e.Service
	inst := registry.Instance{ID: s.ID, Name: s.Service}
	tags := s.Tags
	// A service without Warren's "endpoints" meta may be go-micro's: its
	// version, metadata and RPC endpoints ride in opaque tags (gomicro.go).
	// Warren's own records are never read that way.
	var micro goMicro
	if _, warren := s.Meta[metaEndpoints]; !warren {
		if micro = readGoMicroTags(s.Tags); micro.found {
			tags = micro.rest
		}
	}
	if len(tags) > 0 {
		inst.Tags = append([]string(nil), tags...)
	}
	md := map[string]string{}
	scheme := ""
	for k, v := range s.Meta {
		switch k {
		case metaVersion:
			inst.Version = v
		case metaZone:
			inst.Zone = v
		case metaWeight:
			if w, err := strconv.Atoi(v); err == nil && w > 0 {
				inst.Weight = w
			}
		case metaScheme:
			scheme = v
		case metaEndpoints:
			if v != "" {
				inst.Endpoints = strings.Split(v, ",")
			}
		default:
			md[k] = v
		}
	}
	microScheme := ""
	if micro.found {
		microScheme = applyGoMicro(&inst, md, micro)
	}
	if len(inst.Endpoints) == 0 {
		addr := s.Address
		if addr == "" && e.Node != nil {
			addr = e.Node.Address
		}
		if microScheme != "" && scheme == "" {
			// go-micro's protocol (mucp, grpc, http) is the scheme.
			inst.Endpoints = []string{registry.EndpointURL(microScheme, addr, s.Port)}
		} else {
			ep, err := registry.LegacyEndpoint(scheme, addr, s.Port)
			if err != nil {
				return registry.Instance{}, fmt.Errorf("service %s: %w", s.ID, err)
			}
			inst.Endpoints = []string{ep}
		}
	}
	if e.Node != nil && e.Node.Datacenter != "" {
		md[metaDC] = e.Node.Datacenter
	}
	if len(md) > 0 {
		inst.Metadata = md
	}
	return inst, nil
}

// validate checks inst and the Consul limits on its metadata, so a bad
// instance fails here with ErrInvalidInstance rather than at the agent.
func validate(inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	if inst.Weight > maxWeight {
		return fmt.Errorf("%w: %s: weight %d is above %d, the largest Consul takes (it serves weights as 16-bit DNS SRV weights)",
			registry.ErrInvalidInstance, inst.ID, inst.Weight, maxWeight)
	}
	if eps := strings.Join(inst.Endpoints, ","); len(eps) > maxMetaValueLen {
		return fmt.Errorf("%w: %s: endpoints take %d bytes, Consul meta holds %d", registry.ErrInvalidInstance, inst.ID, len(eps), maxMetaValueLen)
	}
	if len(inst.Metadata)+len(reservedMeta) > maxMetaPairs {
		return fmt.Errorf("%w: %s: more than %d metadata keys", registry.ErrInvalidInstance, inst.ID, maxMetaPairs-len(reservedMeta))
	}
	for k, v := range inst.Metadata {
		switch {
		case slices.Contains(reservedMeta, k):
			return fmt.Errorf("%w: %s: metadata key %q is reserved by the consul backend", registry.ErrInvalidInstance, inst.ID, k)
		case len(k) > maxMetaKeyLen || !metaKeyRE.MatchString(k):
			return fmt.Errorf("%w: %s: metadata key %q must match %s and be at most %d bytes", registry.ErrInvalidInstance, inst.ID, k, metaKeyRE, maxMetaKeyLen)
		case strings.HasPrefix(strings.ToLower(k), "consul-"):
			return fmt.Errorf("%w: %s: metadata key %q uses Consul's reserved prefix", registry.ErrInvalidInstance, inst.ID, k)
		case len(v) > maxMetaValueLen:
			return fmt.Errorf("%w: %s: metadata value of %q longer than %d bytes", registry.ErrInvalidInstance, inst.ID, k, maxMetaValueLen)
		}
	}
	return nil
}
