package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	urlredact "github.com/warren-mesh/warren/internal/redact"
)

// validHost reports whether h is an IP address or a host name.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil { // IPv4, IPv6, with a zone too
		return true
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
		default:
			return false
		}
	}
	return true
}

// checkHostPort checks "host" or "host:port" (port 0–65535); with
// emptyHost, ":port" too.
func checkHostPort(s string, emptyHost bool) error {
	if strings.Contains(s, "://") {
		return errors.New("has a scheme")
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil { // no port: a bare host or IPv6 address
		if !validHost(s) {
			return errors.New("not a host name or IP address")
		}
		return nil
	}
	if !(h == "" && emptyHost) && !validHost(h) {
		return fmt.Errorf("host %q is not a host name or IP address", h)
	}
	if p == "" {
		return nil
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return nil
}

// checkAdvertise checks --advertise: what package app accepts, "host",
// "host:port" or ":port" (the default host, this port), and not an
// unspecified address (0.0.0.0, ::): that is "every interface" to listen
// on, but a caller that dials it reaches itself. The self-check cannot
// tell, as on this host it dials loopback and reaches the service (report
// j53d finding 2). Loopback is accepted: one machine, a local registry
// (the demo, tests).
func checkAdvertise(s string) error {
	if s == "" {
		return nil
	}
	if err := checkHostPort(s, true); err != nil {
		return fmt.Errorf("config: --advertise %q: %v; want a host or host:port such as 10.0.0.5 or 10.0.0.5:8080, without a scheme", s, err)
	}
	h := s
	if host, _, err := net.SplitHostPort(s); err == nil {
		h = host
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.Unmap().IsUnspecified() {
		return fmt.Errorf("config: --advertise %q: %s is the unspecified address, which a service listens on (every interface) but callers cannot dial: "+
			"each would reach itself; give this host's address as other hosts reach it, such as 10.0.0.5 or 10.0.0.5:8080, "+
			"or leave --advertise out (the default is the --listen host, or this host's first interface address when it listens on every interface)", s, h)
	}
	return nil
}

// CheckListen checks a listen address flag (its name without dashes;
// the error names it, without the "config: " Parse adds):
// host:port or :port, port 0–65535 (0 picks a free one). A malformed one
// failed only when the transport bound it, exit 1, and without the flag's
// name ("listen on abc: missing port in address"; report j53d finding 10).
func CheckListen(flagName, s string) error {
	const form = "want host:port such as 127.0.0.1:8080, or :8080 for every interface (port 0 picks a free one)"
	if err := checkHostPort(s, true); err != nil {
		return fmt.Errorf("--%s %q: %v; %s", flagName, s, err, form)
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return fmt.Errorf("--%s %q: no port; %s", flagName, s, form)
	}
	return nil
}

// checkOTLPEndpoint checks --otlp-endpoint the way package tracing reads
// it: a URL http://host:port or https://host:port, or a bare host:port.
// Errors show the value with its user information and query masked
// (urlredact.URL): that is where a secret would be, and it would be logged.
func checkOTLPEndpoint(s string) error {
	if s == "" {
		return nil
	}
	const form = "want http://host:4317 (plaintext), https://host:4317 or host:4317 (TLS)"
	shown := urlredact.URL(s)
	if !strings.Contains(s, "://") {
		if strings.ContainsAny(s, "@?#") {
			return fmt.Errorf("config: --otlp-endpoint %q: credentials or a query in the address; put them in OTEL_EXPORTER_OTLP_HEADERS; %s", shown, form)
		}
		if err := checkHostPort(s, false); err != nil {
			return fmt.Errorf("config: --otlp-endpoint %q: %v; %s", shown, err, form)
		}
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("config: --otlp-endpoint %q: not a URL; %s", shown, form)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("config: --otlp-endpoint %q: scheme %q; %s", shown, u.Scheme, form)
	case u.User != nil:
		return fmt.Errorf("config: --otlp-endpoint %q: credentials in the URL; put them in OTEL_EXPORTER_OTLP_HEADERS; %s", shown, form)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		// OTLP/gRPC sends no query: a token there does nothing but
		// show up wherever the endpoint is printed.
		return fmt.Errorf("config: --otlp-endpoint %q: a query or fragment in the URL, which OTLP/gRPC does not send; put credentials in OTEL_EXPORTER_OTLP_HEADERS; %s", shown, form)
	case u.Path != "" && u.Path != "/":
		// OTLP/gRPC has no path: one is the mark of the OTLP/HTTP
		// endpoint (port 4318, /v1/traces), which speaks another protocol.
		return fmt.Errorf("config: --otlp-endpoint %q: a path in the URL; Warren exports OTLP/gRPC (the collector's port 4317), which has none — %q is an OTLP/HTTP address; %s", shown, u.Path, form)
	}
	if err := checkHostPort(u.Host, false); err != nil {
		return fmt.Errorf("config: --otlp-endpoint %q: %v; %s", shown, err, form)
	}
	return nil
}
