package registry

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ErrInvalidInstance is returned (wrapped) when an Instance or an instance
// string fails validation. Nothing is published for an invalid instance.
var ErrInvalidInstance = errors.New("invalid instance")

// ErrConflict is returned (wrapped) when another live process already holds
// the same instance ID with a different address.
var ErrConflict = errors.New("instance ID conflict")

// ErrClosed is Warren's one "used after Close" error: returned (wrapped)
// by Register and Instancer of a closed Registry (every backend), by calls
// on a closed client.Client, by a closed endpointer and by the embedded
// etcd after Close. Check it with errors.Is; the wrapping says what was
// closed.
var ErrClosed = errors.New("closed")

// DefaultWeight is the weight of an instance that does not set one.
const DefaultWeight = 100

// Instance is one running copy of a service as seen by discovery.
type Instance struct {
	// ID is unique within the service and stable across restarts of the same
	// process on the same address, so a restart replaces its old record.
	ID string `json:"id"`
	// Name is the service name ("user", "order").
	Name string `json:"name"`
	// Endpoints holds one URL per transport the instance serves, in the
	// order the process declared its transports:
	//
	//	http://10.0.0.7:8080   https://…   grpc://10.0.0.7:9090   grpcs://…
	//
	// Each is exactly scheme://host:port (see ParseEndpoint); the scheme
	// names the transport, and an instance has at most one endpoint per
	// scheme. A client picks the endpoint of the transport it speaks with
	// Endpoint.
	Endpoints []string          `json:"endpoints"`
	Version   string            `json:"version,omitempty"`
	Zone      string            `json:"zone,omitempty"`
	Weight    int               `json:"weight,omitempty"`
	Tags      []string          `json:"tags,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// nameRE is the rule ValidName checks (by hand), for error messages.
var nameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName reports whether s is usable as a service name: lower-case
// letters, digits and dashes, starting with a letter and not ending with a
// dash, at most 63 characters (a DNS label, so the name also works in
// Consul, DNS SRV and Kubernetes).
func ValidName(s string) bool {
	// By hand, as nameRE reads: a full sync checks every record's name.
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validScheme reports whether s is a scheme: ^[a-z][a-z0-9+.-]{0,31}$.
func validScheme(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '+' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// DefaultID returns the stable instance ID name-host-port used when an
// Instance is declared without one.
func DefaultID(name, host string, port int) string {
	h := strings.NewReplacer(":", "_", "[", "", "]", "", "%", "_").Replace(host)
	return fmt.Sprintf("%s-%s-%d", name, h, port)
}

// EndpointURL renders one endpoint, e.g. EndpointURL("grpc", "::1", 9090)
// is "grpc://[::1]:9090".
func EndpointURL(scheme, host string, port int) string {
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// ParseEndpoint splits an endpoint "scheme://host:port" into its parts.
// Anything else (a path, a query, user info, a missing port) is refused
// with an error wrapping ErrInvalidInstance.
func ParseEndpoint(ep string) (scheme, host string, port int, err error) {
	scheme, hp, ok := strings.Cut(ep, "://")
	if !ok || !validScheme(scheme) {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: want scheme://host:port with a lower-case scheme", ErrInvalidInstance, ep)
	}
	if notInHostPort.in(hp) {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: want scheme://host:port and nothing else", ErrInvalidInstance, ep)
	}
	host, port, err = splitHostPort(hp)
	if err != nil {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: %w", ErrInvalidInstance, ep, err)
	}
	if host == "" || strings.ContainsAny(host, "[]") {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: empty or malformed host", ErrInvalidInstance, ep)
	}
	if !validHost(host) {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: the host is neither an IP address nor a host name (letters, digits, '.', '-', '_')", ErrInvalidInstance, ep)
	}
	// One spelling per endpoint, so equal instances compare equal.
	if !canonicalHostPort(hp, host, port) {
		canon := EndpointURL(scheme, host, port)
		return "", "", 0, fmt.Errorf("%w: endpoint %q: write it as %q", ErrInvalidInstance, ep, canon)
	}
	return scheme, host, port, nil
}

// validHost reports whether host is a host name (ASCII letters, digits,
// dots, dashes, underscores: DNS names, IPv4 addresses, container names)
// or an IPv6 address (with a zone). Anything else a reader would pass on
// into a proxy's configuration: a ';' in one record's host made nginx
// refuse the whole upstreams file, freezing every service at the edge
// (report j49b).
func validHost(host string) bool {
	for i := 0; i < len(host); i++ {
		c := host[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '-' && c != '_' {
			a, err := netip.ParseAddr(host)
			return err == nil && a.Is6()
		}
	}
	return true
}

// asciiSet is a set of ASCII bytes, for strings.ContainsAny without the
// set IndexAny builds on every call, or a byte search per character.
type asciiSet [4]uint64

func newASCIISet(chars string) (set asciiSet) {
	for i := 0; i < len(chars); i++ {
		set[chars[i]>>6] |= 1 << (chars[i] & 63)
	}
	return set
}

// in reports whether s holds a byte of the set.
func (set *asciiSet) in(s string) bool {
	for i := 0; i < len(s); i++ {
		if set[s[i]>>6]&(1<<(s[i]&63)) != 0 {
			return true
		}
	}
	return false
}

// Bytes an endpoint's host:port and an instance ID must not hold.
var (
	notInHostPort = newASCIISet("/?#@, \t\r\n")
	notInID       = newASCIISet("/ \t\n")
)

// canonicalHostPort reports whether hp is net.JoinHostPort(host,
// strconv.Itoa(port)), without building it.
func canonicalHostPort(hp, host string, port int) bool {
	var buf [8]byte
	p := strconv.AppendInt(buf[:0], int64(port), 10)
	if strings.IndexByte(host, ':') >= 0 {
		return len(hp) == len(host)+3+len(p) && hp[0] == '[' && hp[1:1+len(host)] == host &&
			hp[1+len(host):3+len(host)] == "]:" && hp[3+len(host):] == string(p)
	}
	return len(hp) == len(host)+1+len(p) && hp[:len(host)] == host && hp[len(host)] == ':' && hp[len(host)+1:] == string(p)
}

// Endpoint returns the first endpoint whose scheme is one of schemes, the
// one a client speaking that transport calls: an HTTP client asks for
// Endpoint("http", "https"), a gRPC one for Endpoint("grpc", "grpcs").
func (i Instance) Endpoint(schemes ...string) (string, bool) {
	for _, ep := range i.Endpoints {
		s, _, ok := strings.Cut(ep, "://")
		if ok && slices.Contains(schemes, s) {
			return ep, true
		}
	}
	return "", false
}

// primary is the endpoint that stands for the instance's address: the
// HTTP one when there is one (what round-1 records and Consul's single
// address carry), else the first.
func (i Instance) primary() string {
	if ep, ok := i.Endpoint("http", "https"); ok {
		return ep
	}
	if len(i.Endpoints) > 0 {
		return i.Endpoints[0]
	}
	return ""
}

// HostPort returns "host:port" of the instance's primary endpoint (the
// HTTP one when there is one, else the first), with brackets around IPv6
// addresses. Backends compare it to tell a restart of the same process
// (same address: it takes over its ID) from another process (ErrConflict).
func (i Instance) HostPort() string {
	_, hp, _ := strings.Cut(i.primary(), "://")
	return hp
}

// Host returns the host of the primary endpoint (see HostPort).
func (i Instance) Host() string {
	h, _, err := net.SplitHostPort(i.HostPort())
	if err != nil {
		return ""
	}
	return h
}

// EffectiveWeight returns Weight, or DefaultWeight when it is not set.
func (i Instance) EffectiveWeight() int {
	if i.Weight <= 0 {
		return DefaultWeight
	}
	return i.Weight
}

// Validate reports the first problem that would make the instance unusable
// to a client. The error wraps ErrInvalidInstance.
func (i Instance) Validate() error {
	_, err := i.validString()
	return err
}

// validString is Validate that also returns String, which the check
// that the instance string carries every field renders anyway.
func (i Instance) validString() (string, error) {
	if err := checkHead(i.Name, i.ID, i.Version, i.Zone, i.Weight); err != nil {
		return "", err
	}
	if err := checkEndpoints(i.ID, i.Endpoints); err != nil {
		return "", err
	}
	if err := checkTags(i.ID, i.Tags); err != nil {
		return "", err
	}
	if len(i.Metadata) > MaxMetadata {
		return "", fmt.Errorf("%w: %s: %d metadata entries, at most %d", ErrInvalidInstance, i.ID, len(i.Metadata), MaxMetadata)
	}
	for k, v := range i.Metadata {
		if err := checkMetadata(i.ID, k, v); err != nil {
			return "", err
		}
	}
	return i.checkCarriable()
}

// Reserved query keys of the instance string; metadata keys are prefixed
// with "m." so they can never collide with them.
const (
	qID       = "id"
	qName     = "name"
	qVersion  = "version"
	qZone     = "zone"
	qWeight   = "weight"
	qTag      = "tag"
	qEndpoint = "ep"
	qMeta     = "m."
)

// String renders the instance as the string handed to go-kit: the first
// endpoint, then every other field as a query, further endpoints as "ep":
//
//	http://127.0.0.1:8080/?ep=grpc%3A%2F%2F127.0.0.1%3A9090&id=user-1&name=user&weight=100
//
// It is deterministic (sorted keys), so equal instances give equal strings and
// go-kit's endpoint cache does not churn. An instance with one HTTP endpoint
// renders exactly as round 1 did, so snapshot files written then still load.
func (i Instance) String() string {
	var buf [4]metaPair // most instances carry a few entries: no allocation
	meta := buf[:0]
	for k, v := range i.Metadata {
		meta = append(meta, metaPair{k, v})
	}
	if len(meta) > 1 {
		slices.SortFunc(meta, byKey)
	}
	return instanceString(i.Endpoints, i.ID, i.Name, i.Version, i.Zone, i.Weight, i.Tags, meta)
}

func byKey(a, b metaPair) int { return strings.Compare(a.k, b.k) }

// instanceString renders String from an instance's fields, meta sorted
// by key: Instance.String, and RecordString straight from a record's.
func instanceString(eps []string, id, name, version, zone string, weight int, tags []string, meta []metaPair) string {
	s, _, _ := renderInstance(eps, id, name, version, zone, weight, tags, meta)
	return s
}

// renderInstance is instanceString that also gives where in s the ID's
// and the name's (escaped) values are, start and end.
func renderInstance(eps []string, id, name, version, zone string, weight int, tags []string, meta []metaPair) (s string, idAt, nameAt [2]int) {
	// Built by hand, in url.Values.Encode's order (keys sorted, each
	// key's values in order): every record of a full sync is rendered,
	// and the map and sort of url.Values were most of its cost.
	var b strings.Builder
	b.Grow(128)
	if len(eps) > 0 {
		b.WriteString(eps[0])
	}
	b.WriteString("/?")
	first := true
	// param writes key (which needs no escaping: the q* keys, and "m."
	// before an escaped metadata key) and the escaped value.
	param := func(key, v string) [2]int {
		if !first {
			b.WriteByte('&')
		}
		first = false
		b.WriteString(key)
		b.WriteByte('=')
		at := b.Len()
		b.WriteString(url.QueryEscape(v))
		return [2]int{at, b.Len()}
	}
	for _, ep := range eps[min(1, len(eps)):] {
		param(qEndpoint, ep)
	}
	idAt = param(qID, id)
	for _, p := range meta {
		param(qMeta+url.QueryEscape(p.k), p.v)
	}
	nameAt = param(qName, name)
	if !sort.StringsAreSorted(tags) {
		tags = slices.Clone(tags)
		sort.Strings(tags)
	}
	for _, t := range tags {
		param(qTag, t)
	}
	if version != "" {
		param(qVersion, version)
	}
	if weight <= 0 {
		weight = DefaultWeight // EffectiveWeight
	}
	// Digits need no escaping; appended from the stack, as a weight of
	// 100 or more would be a string allocated per record.
	var digits [20]byte
	param(qWeight, "")
	b.Write(strconv.AppendInt(digits[:0], int64(weight), 10))
	if zone != "" {
		param(qZone, zone)
	}
	return b.String(), idAt, nameAt
}

// ParseInstance is the inverse of Instance.String. A bare "host:port" is
// also accepted (as go-kit's own instancers produce), giving an Instance
// with the one endpoint http://host:port whose ID is the host:port.
func ParseInstance(s string) (Instance, error) {
	if !strings.Contains(s, "://") {
		host, port, err := splitHostPort(s)
		if err != nil {
			return Instance{}, fmt.Errorf("%w: %q: %w", ErrInvalidInstance, s, err)
		}
		return Instance{ID: s, Endpoints: []string{EndpointURL("http", host, port)}}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Instance{}, fmt.Errorf("%w: %q: %w", ErrInvalidInstance, s, err)
	}
	host, port, err := splitHostPort(u.Host)
	if err != nil {
		return Instance{}, fmt.Errorf("%w: %q: %w", ErrInvalidInstance, s, err)
	}
	if strings.Count(u.RawQuery, "&") >= maxQueryPairs {
		// url.ParseQuery would read none of them; no valid instance has so many.
		return Instance{}, fmt.Errorf("%w: %q: more than %d query parameters", ErrInvalidInstance, s, maxQueryPairs)
	}
	ep := EndpointURL(u.Scheme, host, port)
	if strings.HasPrefix(s, ep) {
		ep = s[:len(ep)] // shares the string's memory: one less string per instance held
	}
	inst := Instance{Endpoints: []string{ep}}
	// The query read pair by pair, as url.ParseQuery reads it (the first
	// value of a single-valued key counts), without building its map.
	var weight string
	var seen uint8 // single-valued keys already read
	once := func(bit uint8, dst *string, v string) {
		if seen&bit == 0 {
			seen |= bit
			*dst = v
		}
	}
	queryPairs(u.RawQuery, func(k, v string) {
		switch {
		case k == qID:
			once(1, &inst.ID, v)
		case k == qName:
			once(2, &inst.Name, v)
		case k == qVersion:
			once(4, &inst.Version, v)
		case k == qZone:
			once(8, &inst.Zone, v)
		case k == qWeight:
			once(16, &weight, v)
		case k == qTag:
			inst.Tags = append(inst.Tags, v)
		case k == qEndpoint:
			inst.Endpoints = append(inst.Endpoints, v)
		case strings.HasPrefix(k, qMeta):
			if inst.Metadata == nil {
				inst.Metadata = map[string]string{}
			}
			if _, dup := inst.Metadata[k[len(qMeta):]]; !dup {
				inst.Metadata[k[len(qMeta):]] = v
			}
		}
	})
	for _, ep := range inst.Endpoints {
		if _, _, _, err := ParseEndpoint(ep); err != nil {
			return Instance{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	if weight != "" {
		n, err := strconv.Atoi(weight)
		if err != nil || n < 0 {
			return Instance{}, fmt.Errorf("%w: %q: bad weight %q", ErrInvalidInstance, s, weight)
		}
		inst.Weight = n
	}
	if inst.ID == "" {
		inst.ID = u.Host
	}
	return inst, nil
}

// maxQueryPairs is url.ParseQuery's default limit on query parameters.
const maxQueryPairs = 10000

// queryPairs calls f with each key and value of a URL query, skipping
// the pairs url.ParseQuery skips (empty, a ';' in the key, a bad escape).
func queryPairs(query string, f func(k, v string)) {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := unescapeQuery(k)
		if err != nil {
			continue
		}
		v, err = unescapeQuery(v)
		if err != nil {
			continue
		}
		f(k, v)
	}
}

// unescapeQuery is url.QueryUnescape without its allocation for the
// common string that needs none.
func unescapeQuery(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}
