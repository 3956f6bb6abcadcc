package consul

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
)

// CheckKind says how Consul learns that an instance is healthy.
type CheckKind int

const (
	// CheckTTL is a TTL check: the Registry reports the service's readiness
	// to the agent every TTL/3. A frozen process stops reporting and its
	// instance turns critical after one TTL.
	CheckTTL CheckKind = iota
	// CheckHTTP is an HTTP check: the agent GETs the instance's HTTP
	// endpoint + Path (default /healthz) every Interval; 2xx is passing,
	// 429 warning, anything else critical.
	CheckHTTP
	// CheckTCP is a TCP check: the agent opens a connection to the
	// instance's address every Interval. It proves the port accepts
	// connections, nothing more.
	CheckTCP
	// CheckGRPC is Consul's gRPC check: the agent calls grpc.health.v1
	// Health/Check on the instance's gRPC endpoint every Interval; SERVING
	// is passing, anything else critical.
	CheckGRPC
)

var checkKindNames = []string{CheckTTL: "ttl", CheckHTTP: "http", CheckTCP: "tcp", CheckGRPC: "grpc"}

// String returns the kind's name as --consul-check spells it.
func (k CheckKind) String() string {
	if k < 0 || int(k) >= len(checkKindNames) {
		return fmt.Sprintf("CheckKind(%d)", int(k))
	}
	return checkKindNames[k]
}

// ErrInvalidCheck is returned (wrapped) for a check list that cannot be
// registered: an unknown or repeated kind, a script check, a bad duration.
var ErrInvalidCheck = errors.New("invalid consul check")

// ParseCheckKinds parses a comma-separated list of check kinds, such as
// "ttl" or "ttl,tcp". Each kind may appear once. "script" is refused with
// the reason: see docs/registry-consul.md.
func ParseCheckKinds(s string) ([]CheckKind, error) {
	var kinds []CheckKind
	for _, part := range strings.Split(s, ",") {
		name := strings.ToLower(strings.TrimSpace(part))
		if name == "" {
			continue
		}
		k := CheckKind(slices.Index(checkKindNames, name))
		switch {
		case name == "script":
			return nil, fmt.Errorf("%w: script checks are not offered: they run commands on the agent's host, which Consul disables by default (enable_script_checks) for that reason; use ttl, http, tcp or grpc", ErrInvalidCheck)
		case k < 0:
			return nil, fmt.Errorf("%w: unknown kind %q: want ttl, http, tcp or grpc", ErrInvalidCheck, name)
		case slices.Contains(kinds, k):
			return nil, fmt.Errorf("%w: %s listed twice", ErrInvalidCheck, name)
		}
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("%w: empty list: want ttl, http, tcp or grpc", ErrInvalidCheck)
	}
	return kinds, nil
}

// Check is one health check registered with every instance. A zero field
// takes the default given in its comment.
type Check struct {
	Kind CheckKind

	// TTL is how long the agent waits for a heartbeat before the check
	// turns critical (CheckTTL; default 10s). The Registry heartbeats
	// every TTL/3.
	TTL time.Duration
	// Interval is how often the agent probes (HTTP, TCP, gRPC; default
	// 10s; Consul runs checks at most once a second).
	Interval time.Duration
	// Timeout bounds one probe (HTTP, TCP, gRPC; default 2s).
	Timeout time.Duration

	// Path is what the HTTP check GETs (default /healthz).
	Path string
	// GRPCService is the service name the gRPC check asks grpc.health.v1
	// about; empty asks about the server as a whole.
	GRPCService string

	// TLS is how the agent verifies the instance's certificate in HTTP
	// checks of https endpoints and gRPC checks of grpcs endpoints.
	TLS CheckTLS
}

// CheckTLS is how the agent verifies an instance's certificate. The agent
// verifies against its own CA (the system roots, or its tls.defaults CA
// when enable_agent_tls_for_checks is on) and presents a client
// certificate only when enable_agent_tls_for_checks is on: an instance
// that requires client certificates (mTLS) can be probed over HTTP or
// gRPC only then. TTL and TCP checks are unaffected by mTLS.
type CheckTLS struct {
	// ServerName is the name checked in the instance's certificate
	// (Consul's TLSServerName; default: the host dialled).
	ServerName string
	// SkipVerify accepts any certificate (Consul's TLSSkipVerify).
	SkipVerify bool
}

// Check defaults.
const (
	DefaultCheckTTL      = 10 * time.Second
	DefaultCheckInterval = 10 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
	DefaultHealthPath    = "/healthz"
)

// withDefaults fills zero fields (a negative one is validateChecks' to
// refuse, not a default).
func (c Check) withDefaults() Check {
	if c.TTL == 0 {
		c.TTL = DefaultCheckTTL
	}
	if c.Interval == 0 {
		c.Interval = DefaultCheckInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultCheckTimeout
	}
	if c.Path == "" {
		c.Path = DefaultHealthPath
	}
	return c
}

// validateChecks reports a check list New cannot use.
func validateChecks(cs []Check) error {
	if len(cs) == 0 {
		return fmt.Errorf("%w: no check: every instance needs at least one", ErrInvalidCheck)
	}
	var seen []CheckKind
	for _, c := range cs {
		switch {
		case c.Kind < CheckTTL || c.Kind > CheckGRPC:
			return fmt.Errorf("%w: unknown kind %s", ErrInvalidCheck, c.Kind)
		case slices.Contains(seen, c.Kind):
			return fmt.Errorf("%w: two %s checks", ErrInvalidCheck, c.Kind)
		case c.TTL < 0 || c.Interval < 0 || c.Timeout < 0:
			return fmt.Errorf("%w: %s check: negative TTL, interval or timeout (0 takes the default)", ErrInvalidCheck, c.Kind)
		case c.Kind == CheckTTL && c.TTL < 3*time.Millisecond:
			return fmt.Errorf("%w: TTL %s is too short", ErrInvalidCheck, c.TTL)
		case c.Kind != CheckTTL && c.Timeout > c.Interval:
			return fmt.Errorf("%w: %s timeout %s longer than its interval %s", ErrInvalidCheck, c.Kind, c.Timeout, c.Interval)
		case c.Kind == CheckHTTP && !strings.HasPrefix(c.Path, "/"):
			return fmt.Errorf("%w: HTTP check path %q must start with /", ErrInvalidCheck, c.Path)
		}
		seen = append(seen, c.Kind)
	}
	return nil
}

// checkID is the ID of inst's check of kind k. The TTL check keeps the
// ID it had when it was the only kind, "service:<ID>".
func checkID(instID string, k CheckKind) string {
	if k == CheckTTL {
		return "service:" + instID
	}
	return "service:" + instID + ":" + k.String()
}

// checkDefinitions renders the checks for inst, or says why inst cannot
// carry them (an HTTP check without an HTTP endpoint, say); the error wraps
// registry.ErrInvalidInstance. status and output are the initial state of
// the TTL check.
func (c *config) checkDefinitions(inst registry.Instance, status, output string) (api.AgentServiceChecks, error) {
	out := make(api.AgentServiceChecks, 0, len(c.checks))
	for _, chk := range c.checks {
		def := &api.AgentServiceCheck{CheckID: checkID(inst.ID, chk.Kind)}
		if c.deregCritical > 0 {
			def.DeregisterCriticalServiceAfter = c.deregCritical.String()
		}
		if chk.Kind != CheckTTL {
			def.Interval = chk.Interval.String()
			def.Timeout = chk.Timeout.String()
		}
		switch chk.Kind {
		case CheckTTL:
			def.Name = "warren readiness"
			def.TTL = chk.TTL.String()
			def.Status = status
			def.Notes = output
		case CheckHTTP:
			base, ok := httpEndpoint(inst)
			if !ok {
				return nil, fmt.Errorf("%w: %s: an http check needs an http or https endpoint", registry.ErrInvalidInstance, inst.ID)
			}
			def.Name = "warren http " + chk.Path
			def.HTTP = base + chk.Path
			def.Method = http.MethodGet
			def.TLSServerName = chk.TLS.ServerName
			def.TLSSkipVerify = chk.TLS.SkipVerify
		case CheckTCP:
			def.Name = "warren tcp"
			def.TCP = inst.HostPort()
		case CheckGRPC:
			hostPort, useTLS, ok := grpcEndpoint(inst)
			if !ok {
				return nil, fmt.Errorf("%w: %s: a grpc check needs a grpc or grpcs endpoint", registry.ErrInvalidInstance, inst.ID)
			}
			def.Name = "warren grpc health"
			def.GRPC = hostPort
			if chk.GRPCService != "" {
				def.GRPC += "/" + chk.GRPCService
			}
			def.GRPCUseTLS = useTLS
			def.TLSServerName = chk.TLS.ServerName
			def.TLSSkipVerify = chk.TLS.SkipVerify
		}
		out = append(out, def)
	}
	return out, nil
}

// ttlCheck returns the TTL check, if the list has one.
func (c *config) ttlCheck() (Check, bool) {
	for _, chk := range c.checks {
		if chk.Kind == CheckTTL {
			return chk, true
		}
	}
	return Check{}, false
}

// probeInterval is the shortest interval of the agent-run checks.
func (c *config) probeInterval() time.Duration {
	var d time.Duration
	for _, chk := range c.checks {
		if chk.Kind != CheckTTL && (d == 0 || chk.Interval < d) {
			d = chk.Interval
		}
	}
	if d == 0 {
		d = DefaultCheckInterval
	}
	return d
}

// ChecksFor builds the check list of a --consul-check value: the kinds
// (ParseCheckKinds) with the given TTL, interval, timeout and TLS. It
// validates the result as New would, so a command line fails before
// anything starts.
func ChecksFor(kinds string, ttl, interval, timeout time.Duration, tls CheckTLS) ([]Check, error) {
	ks, err := ParseCheckKinds(kinds)
	if err != nil {
		return nil, err
	}
	out := make([]Check, 0, len(ks))
	for _, k := range ks {
		c := Check{Kind: k, TTL: ttl, Interval: interval, Timeout: timeout}
		if k == CheckHTTP || k == CheckGRPC {
			c.TLS = tls
		}
		out = append(out, c.withDefaults())
	}
	if err := validateChecks(out); err != nil {
		return nil, err
	}
	return out, nil
}
