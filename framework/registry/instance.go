package registry

import (
	"errors"
	"fmt"
	"net"
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

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]{0,31}$`)
)

// ValidName reports whether s is usable as a service name: lower-case
// letters, digits and dashes, starting with a letter, at most 63 characters
// (a DNS label, so the name also works in Consul and Kubernetes).
func ValidName(s string) bool { return nameRE.MatchString(s) }

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
	if !ok || !schemeRE.MatchString(scheme) {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: want scheme://host:port with a lower-case scheme", ErrInvalidInstance, ep)
	}
	if strings.ContainsAny(hp, "/?#@, \t\r\n") {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: want scheme://host:port and nothing else", ErrInvalidInstance, ep)
	}
	host, port, err = splitHostPort(hp)
	if err != nil {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: %w", ErrInvalidInstance, ep, err)
	}
	if host == "" || strings.ContainsAny(host, "[]") {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: empty or malformed host", ErrInvalidInstance, ep)
	}
	// One spelling per endpoint, so equal instances compare equal.
	if canon := EndpointURL(scheme, host, port); canon != ep {
		return "", "", 0, fmt.Errorf("%w: endpoint %q: write it as %q", ErrInvalidInstance, ep, canon)
	}
	return scheme, host, port, nil
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
	switch {
	case !ValidName(i.Name):
		return fmt.Errorf("%w: service name %q must match %s", ErrInvalidInstance, i.Name, nameRE)
	case i.ID == "":
		return fmt.Errorf("%w: %s: empty instance ID", ErrInvalidInstance, i.Name)
	case strings.ContainsAny(i.ID, "/ \t\n"):
		return fmt.Errorf("%w: instance ID %q must not contain '/' or spaces", ErrInvalidInstance, i.ID)
	case len(i.Endpoints) == 0:
		return fmt.Errorf("%w: %s: no endpoints", ErrInvalidInstance, i.ID)
	case i.Weight < 0:
		return fmt.Errorf("%w: %s: negative weight %d", ErrInvalidInstance, i.ID, i.Weight)
	}
	seen := make(map[string]bool, len(i.Endpoints))
	for _, ep := range i.Endpoints {
		scheme, _, _, err := ParseEndpoint(ep)
		if err != nil {
			return fmt.Errorf("%s: %w", i.ID, err)
		}
		if seen[scheme] {
			return fmt.Errorf("%w: %s: two %s endpoints; publish one per transport", ErrInvalidInstance, i.ID, scheme)
		}
		seen[scheme] = true
	}
	if err := i.checkLimits(); err != nil {
		return err
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
	q := url.Values{}
	q.Set(qID, i.ID)
	q.Set(qName, i.Name)
	if i.Version != "" {
		q.Set(qVersion, i.Version)
	}
	if i.Zone != "" {
		q.Set(qZone, i.Zone)
	}
	q.Set(qWeight, strconv.Itoa(i.EffectiveWeight()))
	tags := append([]string(nil), i.Tags...)
	sort.Strings(tags)
	for _, t := range tags {
		q.Add(qTag, t)
	}
	for k, v := range i.Metadata {
		q.Set(qMeta+k, v)
	}
	base := ""
	if len(i.Endpoints) > 0 {
		base = i.Endpoints[0]
		for _, ep := range i.Endpoints[1:] {
			q.Add(qEndpoint, ep)
		}
	}
	return base + "/?" + q.Encode()
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
	q := u.Query()
	inst := Instance{
		ID:        q.Get(qID),
		Name:      q.Get(qName),
		Endpoints: append([]string{EndpointURL(u.Scheme, host, port)}, q[qEndpoint]...),
		Version:   q.Get(qVersion),
		Zone:      q.Get(qZone),
		Tags:      q[qTag],
	}
	for _, ep := range inst.Endpoints {
		if _, _, _, err := ParseEndpoint(ep); err != nil {
			return Instance{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	if w := q.Get(qWeight); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return Instance{}, fmt.Errorf("%w: %q: bad weight %q", ErrInvalidInstance, s, w)
		}
		inst.Weight = n
	}
	for k, v := range q {
		if strings.HasPrefix(k, qMeta) && len(v) > 0 {
			if inst.Metadata == nil {
				inst.Metadata = map[string]string{}
			}
			inst.Metadata[strings.TrimPrefix(k, qMeta)] = v[0]
		}
	}
	if inst.ID == "" {
		inst.ID = u.Host
	}
	return inst, nil
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
