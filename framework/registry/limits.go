package registry

import (
	"fmt"
	"net/url"
	"strings"
)

// Limits on what an instance may carry. A registry holds every instance
// of every service and each client reads all of one service's, so one
// oversized record costs every reader; a record over these limits is
// refused when registered and skipped when read.
const (
	// MaxRecordSize bounds an encoded record (EncodeRecord) and what
	// DecodeRecord reads.
	MaxRecordSize = 16 << 10
	// MaxMetadata bounds the number of metadata entries, MaxMetadataKey
	// and MaxMetadataValue the bytes of each key and value.
	MaxMetadata      = 64
	MaxMetadataKey   = 128
	MaxMetadataValue = 1024
	// MaxTags bounds the number of tags, MaxTagLen the bytes of each.
	MaxTags   = 64
	MaxTagLen = 128
	// MaxFieldLen bounds the instance ID, each endpoint, the version and
	// the zone.
	MaxFieldLen = 253
)

// MaxEndpoints bounds the endpoints of one instance (one per transport).
const MaxEndpoints = 16

// checkCarriable reports fields the instance string (String, which go-kit
// hands to every client) would not give back as they are: a host with a
// control character, or anything the URL form cannot carry, would be
// counted as registered and then skipped — or misread — by every client.
// It returns the instance string.
//
// The query part carries every field but the first endpoint losslessly by
// construction (url.QueryEscape then url.QueryUnescape gives back any
// string, and escaped values hold no '&' or '='); the first endpoint is
// the URL's own scheme and host, so that is what is read back — by the
// parser itself, so no character list can fall behind it. (The full
// round trip was a second ParseInstance per record of every full sync.)
func (i Instance) checkCarriable() (string, error) {
	if hasCtl(i.ID, i.Name, i.Version, i.Zone) || hasCtl(i.Endpoints...) {
		return "", fmt.Errorf("%w: %q: control character in a field", ErrInvalidInstance, i.ID)
	}
	s := i.String()
	if len(i.Endpoints) > 0 && plainHost(i.Endpoints[0]) {
		// Nothing in scheme://host:port to read back differently
		// (FuzzValidInstance_ReadsBackFromString): the parse is an allocation and most
		// of this check's cost, per record of a full sync.
		return s, nil
	}
	if err := i.readsBack(s); err != nil {
		return "", err
	}
	return s, nil
}

// readsBack reports whether the instance string s gives back the first
// endpoint, read by the URL parser.
func (i Instance) readsBack(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %s: cannot be carried in an instance string: %w", ErrInvalidInstance, i.ID, err)
	}
	host, port, err := splitHostPort(u.Host)
	if err != nil || len(i.Endpoints) == 0 || !isEndpointURL(i.Endpoints[0], u.Scheme, host, port) {
		return fmt.Errorf("%w: %s: endpoint %v does not read back from the instance string", ErrInvalidInstance, i.ID, i.Endpoints)
	}
	return nil
}

// isEndpointURL reports whether ep is EndpointURL(scheme, host, port),
// without building it.
func isEndpointURL(ep, scheme, host string, port int) bool {
	n := len(scheme) + len("://")
	return len(ep) >= n && ep[:len(scheme)] == scheme && ep[len(scheme):n] == "://" && canonicalHostPort(ep[n:], host, port)
}

// hasCtl reports whether any of ss holds a control character (below
// 0x20, or DEL). Bytes, not runes: every such rune is one byte in UTF-8,
// and no byte of a longer rune is below 0x80.
func hasCtl(ss ...string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == 0x7f {
				return true
			}
		}
	}
	return false
}

// plainHost reports whether the endpoint ep, which ParseEndpoint
// accepted, has a host of lower-case letters, digits, dots and dashes
// only (DNS names and IPv4 addresses, what registrars write).
func plainHost(ep string) bool {
	_, hp, _ := strings.Cut(ep, "://")
	host := hp[:max(0, strings.LastIndexByte(hp, ':'))]
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}
