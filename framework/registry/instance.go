package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
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

// ErrClosed is returned (wrapped) by Register and Instancer of a Registry
// that was closed. Every backend returns this one value.
var ErrClosed = errors.New("registry closed")

// DefaultWeight is the weight of an instance that does not set one.
const DefaultWeight = 100

// Instance is one running copy of a service as seen by discovery.
type Instance struct {
	// ID is unique within the service and stable across restarts of the same
	// process on the same address, so a restart replaces its old record.
	ID string `json:"id"`
	// Name is the service name ("user", "order").
	Name string `json:"name"`
	// Address is the advertised host or IP, without a port.
	Address string `json:"address"`
	// Port is the advertised TCP port.
	Port int `json:"port"`
	// Scheme is "http" (the default) or "https".
	Scheme   string            `json:"scheme,omitempty"`
	Version  string            `json:"version,omitempty"`
	Zone     string            `json:"zone,omitempty"`
	Weight   int               `json:"weight,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

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

// HostPort returns "host:port", with brackets around IPv6 addresses.
func (i Instance) HostPort() string {
	return net.JoinHostPort(i.Address, strconv.Itoa(i.Port))
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
	case i.Address == "":
		return fmt.Errorf("%w: %s: empty address", ErrInvalidInstance, i.ID)
	case strings.ContainsAny(i.Address, "/ ") || strings.HasPrefix(i.Address, "["):
		return fmt.Errorf("%w: %s: address %q must be a bare host or IP", ErrInvalidInstance, i.ID, i.Address)
	case i.Port <= 0 || i.Port > 65535:
		return fmt.Errorf("%w: %s: port %d out of range", ErrInvalidInstance, i.ID, i.Port)
	case i.Scheme != "" && i.Scheme != "http" && i.Scheme != "https":
		return fmt.Errorf("%w: %s: scheme %q is not http or https", ErrInvalidInstance, i.ID, i.Scheme)
	case i.Weight < 0:
		return fmt.Errorf("%w: %s: negative weight %d", ErrInvalidInstance, i.ID, i.Weight)
	}
	return nil
}

// Reserved query keys of the instance string; metadata keys are prefixed
// with "m." so they can never collide with them.
const (
	qID      = "id"
	qName    = "name"
	qVersion = "version"
	qZone    = "zone"
	qWeight  = "weight"
	qTag     = "tag"
	qMeta    = "m."
)

// String renders the instance as the string handed to go-kit:
//
//	http://127.0.0.1:8080/?id=user-127.0.0.1-8080&name=user&tag=a&m.k=v&version=1.0&weight=100&zone=a
//
// It is deterministic (sorted keys), so equal instances give equal strings and
// go-kit's endpoint cache does not churn.
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
	scheme := i.Scheme
	if scheme == "" {
		scheme = "http"
	}
	u := url.URL{Scheme: scheme, Host: i.HostPort(), Path: "/", RawQuery: q.Encode()}
	return u.String()
}

// BaseURL returns the scheme and host of the instance, e.g. "http://[::1]:8080".
func (i Instance) BaseURL() string {
	scheme := i.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + i.HostPort()
}

// ParseInstance is the inverse of Instance.String. A bare "host:port" is
// also accepted (as go-kit's own instancers produce), giving an Instance
// whose ID is the host:port.
func ParseInstance(s string) (Instance, error) {
	if !strings.Contains(s, "://") {
		host, port, err := splitHostPort(s)
		if err != nil {
			return Instance{}, fmt.Errorf("%w: %q: %w", ErrInvalidInstance, s, err)
		}
		return Instance{ID: s, Address: host, Port: port}, nil
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
		ID:      q.Get(qID),
		Name:    q.Get(qName),
		Address: host,
		Port:    port,
		Version: q.Get(qVersion),
		Zone:    q.Get(qZone),
		Tags:    q[qTag],
	}
	if u.Scheme != "http" {
		inst.Scheme = u.Scheme
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

// recordVersion is the schema version of the stored JSON record. Readers
// refuse versions they do not know rather than guess.
const recordVersion = 1

type record struct {
	V        int      `json:"v"`
	Instance Instance `json:"instance"`
}

// EncodeRecord renders the versioned JSON record that key-value backends
// (etcd) store for an instance.
func EncodeRecord(i Instance) ([]byte, error) {
	if err := i.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(record{V: recordVersion, Instance: i})
}

// DecodeRecord parses and validates a record written by EncodeRecord.
// Garbage, unknown versions and invalid instances give an error wrapping
// ErrInvalidInstance.
func DecodeRecord(b []byte) (Instance, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Instance{}, fmt.Errorf("%w: record: %w", ErrInvalidInstance, err)
	}
	if r.V != recordVersion {
		return Instance{}, fmt.Errorf("%w: record version %d, want %d", ErrInvalidInstance, r.V, recordVersion)
	}
	if err := r.Instance.Validate(); err != nil {
		return Instance{}, err
	}
	// "tags": [] and no tags are the same instance; keep one form so
	// decoded records compare equal (found by FuzzDecodeRecord).
	if len(r.Instance.Tags) == 0 {
		r.Instance.Tags = nil
	}
	if len(r.Instance.Metadata) == 0 {
		r.Instance.Metadata = nil
	}
	return r.Instance, nil
}
