package httptransport

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// CodeHostNotAllowed is the code of AllowedHosts' refusal.
const CodeHostNotAllowed = "host_not_allowed"

// AllowedHosts serves next only to requests whose Host header (its port
// aside) is an IP address, "localhost", or one of hosts (names, compared
// without case or a trailing dot); others get 421 Misdirected Request and
// a JSON error with code host_not_allowed. A request without a Host (an
// HTTP/1.0 client, never a browser) passes.
//
// It keeps what a listener on loopback or an admin network serves (the
// debug listener's /metrics and /debug/pprof, the mesh page) from a DNS
// rebinding page: a site open in an operator's browser re-points its own
// name to 127.0.0.1 and reads the answers as same-origin, but the
// browser still sends that name as the Host, which is refused here.
// Callers by IP address (Prometheus scraping pod IPs) are unaffected. The
// names a listener is legitimately reached by — its own listen host, the
// advertised host — go in hosts. setting names where an operator adds a
// name ("--debug-allowed-hosts"), for the refusal's message.
func AllowedHosts(next http.Handler, setting string, hosts ...string) http.Handler {
	allowed := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		if h = normalHost(h); h != "" {
			allowed[h] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hostAllowed(r.Host, allowed) {
			next.ServeHTTP(w, r)
			return
		}
		writeJSONError(w, http.StatusMisdirectedRequest, ErrorBody{
			Error: fmt.Sprintf("Host %q is not a name this listener answers to (DNS rebinding protection): use its IP address or localhost, or add the name to %s",
				r.Host, setting),
			Code: CodeHostNotAllowed,
		})
	})
}

// CheckAllowedHost reports why h cannot be an entry of AllowedHosts' list:
// a bare host name or address, no port, scheme or path.
func CheckAllowedHost(h string) error {
	switch {
	case strings.TrimSpace(h) == "":
		return errors.New("empty host name")
	case strings.ContainsAny(h, "/ \t@?#"):
		return fmt.Errorf("host %q: want a bare name (no scheme, path or spaces)", h)
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return nil // an address: allowed anyway, harmless to list
	}
	if strings.Contains(h, ":") {
		return fmt.Errorf("host %q: want a name without a port", h)
	}
	return nil
}

// hostAllowed applies AllowedHosts' rule to a request's Host.
func hostAllowed(hostport string, allowed map[string]bool) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = normalHost(host)
	return host == "localhost" || allowed[host]
}

// normalHost is a name as compared: lower case, no trailing dot.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}
