// Package transport is the seam between the lifecycle (package app) and
// the protocols a service speaks. A transport is a Server: the App runs any
// number of them, each through the same phases, in order:
//
//	Listen    bind (port 0 picks a free one); nothing is answered yet
//	Serve     answer on the bound listener, in the App's goroutine, until
//	          Shutdown or Close; returns nil then, an error if it stopped
//	          on its own
//	Probe     one attempt to reach the advertised endpoint and prove that
//	          this very server answered (Host.Nonce); the App retries it
//	Shutdown  stop accepting, let in-flight calls finish until ctx ends,
//	          then cut what is left and say so (ErrDrainTimeout)
//	Close     stop at once (a failed start-up); idempotent
//
// Each Server publishes one endpoint, Scheme()://advertised-host:port, in
// the registered instance, so a client of the transport finds it with
// registry.Instance.Endpoint. Package transport/httpserver is the HTTP
// implementation; a new transport (gRPC) is one package implementing Server
// plus its svcgen emitter. See docs/architecture.md.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/health"
)

// ErrDrainTimeout is returned (wrapped) by Shutdown when in-flight calls
// were still running when its context ended; their connections were closed.
// The error ends with the context's cause (context.Cause): the drain
// timeout, or the App's forced exit on a second signal.
var ErrDrainTimeout = errors.New("drain cut short")

// Server is one transport a service serves on. The App calls Listen, then
// Serve (in a goroutine it owns), then Probe until it passes, and at the
// end Shutdown; or Close at any point after Listen when start-up fails.
// Listen and Serve are called once each. Shutdown and Close may be called
// once each, in any order, and must make Serve return.
type Server interface {
	// Scheme is the endpoint scheme a client uses to reach this server:
	// "http", "https", "grpc", "grpcs". One server per scheme per App.
	Scheme() string
	// Listen binds the server's address and returns the bound address.
	Listen(h Host) (net.Addr, error)
	// Serve answers on the bound listener until Shutdown or Close.
	Serve() error
	// Probe makes one attempt to reach endpoint (this server's advertised
	// endpoint) the way a client would, and checks that the answer carries
	// Host.Nonce, so a wrong advertised address fails start-up instead of
	// publishing an instance nobody (or somebody else) answers at.
	Probe(ctx context.Context, endpoint string) error
	// Shutdown drains: stop accepting, wait for in-flight calls until ctx
	// ends, then close them and return an error wrapping ErrDrainTimeout.
	Shutdown(ctx context.Context) error
	// Close stops serving at once. It is idempotent.
	Close() error
}

// RegisteredCheck is the name of the App's readiness check that reports
// its registration. It fails on every instance at once while the registry
// cannot be reached, which says nothing about whether an instance can
// serve: gRPC health leaves it out of the names callers and probes ask by
// default (docs/grpc.md), as HTTP probes ask /readyz?exclude=registered.
const RegisteredCheck = "registered"

// Host is what the App gives every Server before it listens: the same
// liveness and readiness for every transport (HTTP serves them as /healthz
// and /readyz, gRPC as grpc.health.v1), the self-check nonce and the log.
type Host struct {
	Service, Version string
	// InstanceID returns the published instance ID (known once every
	// server has listened; "" before).
	InstanceID func() string
	// Nonce is this process's self-check secret: a server's health answer
	// echoes it to a probe that asks (see Probe).
	Nonce string
	// Live and Ready are the process's liveness and readiness checks.
	Live, Ready *health.Set
	Logger      log.Logger
	// Handshakes reports the TLS transports' failed handshakes, throttled
	// and counted, one for all of the process's transports; nil: a server
	// makes its own on Logger.
	Handshakes *HandshakeLog
	// AccessLog says which served requests get an access line (zero
	// value: every one).
	AccessLog AccessLog
}

// AccessLog says which requests a server writes an access line for.
type AccessLog int

const (
	// AccessAll logs every request (health checks at debug level).
	AccessAll AccessLog = iota
	// AccessErrors logs only requests the server failed: HTTP 5xx, and
	// the gRPC codes gateways answer 5xx for (Internal, Unknown,
	// DataLoss, Unimplemented, Unavailable, DeadlineExceeded).
	AccessErrors
	// AccessOff logs none.
	AccessOff
)

// ParseAccessLog reads "all", "errors" or "off".
func ParseAccessLog(s string) (AccessLog, error) {
	switch s {
	case "all":
		return AccessAll, nil
	case "errors":
		return AccessErrors, nil
	case "off":
		return AccessOff, nil
	}
	return 0, fmt.Errorf("access log %q: want all, errors or off", s)
}

func (m AccessLog) String() string {
	switch m {
	case AccessErrors:
		return "errors"
	case AccessOff:
		return "off"
	}
	return "all"
}

// HandshakeLog returns h.Handshakes, or a new one on h.Logger when it is
// nil.
func (h Host) HandshakeLog() *HandshakeLog {
	if h.Handshakes != nil {
		return h.Handshakes
	}
	return NewHandshakeLog(h.Logger, DefaultHandshakeLogEvery)
}
