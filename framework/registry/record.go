package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unsafe"
)

// recordVersion is the schema version of the stored JSON record. Readers
// refuse versions they do not know rather than guess.
//
// Endpoints were added to version 1 without a new version number, on
// purpose: a record keeps the round-1 fields address, port and scheme for
// its HTTP endpoint, so processes still running round-1 code keep reading
// records written by new ones during a rolling upgrade (they ignore the
// endpoints they cannot speak), and records written by round 1, which have
// no endpoints, decode to an instance with that one HTTP endpoint.
const recordVersion = 1

type record struct {
	V        int            `json:"v"`
	Instance storedInstance `json:"instance"`
}

// storedInstance is Instance as stored: Instance's fields plus the round-1
// address fields.
type storedInstance struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Endpoints []string          `json:"endpoints,omitempty"`
	Address   string            `json:"address,omitempty"`
	Port      int               `json:"port,omitempty"`
	Scheme    string            `json:"scheme,omitempty"`
	Version   string            `json:"version,omitempty"`
	Zone      string            `json:"zone,omitempty"`
	Weight    int               `json:"weight,omitempty"`
	Tags      []string          `json:"tags,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// EncodeRecord renders the versioned JSON record that key-value backends
// (etcd) store for an instance.
func EncodeRecord(i Instance) ([]byte, error) {
	if err := i.Validate(); err != nil {
		return nil, err
	}
	s := storedInstance{
		ID: i.ID, Name: i.Name, Endpoints: i.Endpoints,
		Version: i.Version, Zone: i.Zone, Weight: i.Weight, Tags: i.Tags, Metadata: i.Metadata,
	}
	if ep, ok := i.Endpoint("http", "https"); ok {
		scheme, host, port, _ := ParseEndpoint(ep) // valid: checked above
		s.Address, s.Port = host, port
		if scheme != "http" {
			s.Scheme = scheme
		}
	}
	b, err := json.Marshal(record{V: recordVersion, Instance: s})
	if err == nil && len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %s: record of %d bytes, at most %d", ErrInvalidInstance, i.ID, len(b), MaxRecordSize)
	}
	return b, err
}

// DecodeRecord parses and validates a record written by EncodeRecord or by
// round 1. Garbage, unknown versions and invalid instances give an error
// wrapping ErrInvalidInstance.
func DecodeRecord(b []byte) (Instance, error) {
	inst, _, err := DecodeRecordString(b)
	return inst, err
}

// DecodeRecordString is DecodeRecord that also returns the instance's
// String, which validation renders anyway: instancers serve it.
func DecodeRecordString(b []byte) (Instance, string, error) {
	if len(b) > MaxRecordSize {
		return Instance{}, "", fmt.Errorf("%w: record of %d bytes, at most %d", ErrInvalidInstance, len(b), MaxRecordSize)
	}
	r, ok := scanRecord(b)
	if !ok {
		r = record{}
		if err := json.Unmarshal(b, &r); err != nil {
			return Instance{}, "", fmt.Errorf("%w: record: %w", ErrInvalidInstance, err)
		}
	}
	if r.V != recordVersion {
		return Instance{}, "", fmt.Errorf("%w: record version %d, want %d", ErrInvalidInstance, r.V, recordVersion)
	}
	s := r.Instance
	inst := Instance{
		ID: s.ID, Name: s.Name, Endpoints: s.Endpoints,
		Version: s.Version, Zone: s.Zone, Weight: s.Weight, Tags: s.Tags, Metadata: s.Metadata,
	}
	if len(inst.Endpoints) == 0 {
		ep, err := LegacyEndpoint(s.Scheme, s.Address, s.Port)
		if err != nil {
			return Instance{}, "", fmt.Errorf("%s: %w", s.ID, err)
		}
		inst.Endpoints = []string{ep}
	}
	str, err := inst.validString()
	if err != nil {
		return Instance{}, "", err
	}
	// "tags": [] and no tags are the same instance; keep one form so
	// decoded records compare equal (found by FuzzDecodeRecord).
	if len(inst.Tags) == 0 {
		inst.Tags = nil
	}
	if len(inst.Metadata) == 0 {
		inst.Metadata = nil
	}
	return inst, str, nil
}

// LegacyEndpoint turns the round-1 address fields (one scheme, "http" when
// empty, one host, one port) into an endpoint, for backends that read
// records written before instances carried endpoints.
func LegacyEndpoint(scheme, address string, port int) (string, error) {
	switch {
	case scheme == "":
		scheme = "http"
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("%w: scheme %q is not http or https", ErrInvalidInstance, scheme)
	}
	switch {
	case address == "":
		return "", fmt.Errorf("%w: empty address", ErrInvalidInstance)
	case strings.ContainsAny(address, "/ []"):
		return "", fmt.Errorf("%w: address %q must be a bare host or IP", ErrInvalidInstance, address)
	case port <= 0 || port > 65535:
		return "", fmt.Errorf("%w: port %d out of range", ErrInvalidInstance, port)
	}
	ep := EndpointURL(scheme, address, port)
	if _, _, _, err := ParseEndpoint(ep); err != nil {
		return "", err
	}
	return ep, nil
}

// RecordString is DecodeRecordString for readers that keep only the
// instance string (instancers): it returns the instance's ID and name,
// for the reader to check against the record's key, and its String, or
// DecodeRecordString's error. A full sync decodes every record of a
// service; this builds no Instance on the way (no metadata map, no
// slices), only the string it returns.
//
// It accepts a record only when every check of DecodeRecordString passes
// on the fields as scanned, and otherwise hands the record to
// DecodeRecordString, so what it accepts, and every error, is that
// function's (FuzzRecordString checks that).
//
// Nothing it returns shares memory with b: the caller may reuse b.
func RecordString(b []byte) (id, name, s string, err error) {
	var f flatRecord // 3.5 KiB of stack, not a heap object per record
	if id, name, s, ok := recordStringFast(b, &f); ok {
		return id, name, s, nil
	}
	inst, s, err := DecodeRecordString(b)
	return inst.ID, inst.Name, s, err
}

// recordStringFast scans b into f and renders the instance string of a
// record written by EncodeRecord in the usual shape (endpoints present, a
// plain first host) that passes validation, or reports ok=false for
// DecodeRecordString to decide. It returns the instance's ID and name
// too, as substrings of s when s carries them unescaped (it does for
// what registrars write), else as copies.
//
// The record is scanned in place, not copied: f's strings point into b
// and are dead once this returns (nothing returned points into b). A
// full sync decodes every record of a service, and the copy was one
// allocation of the record's size per record.
func recordStringFast(b []byte, f *flatRecord) (id, name, s string, ok bool) {
	if len(b) > MaxRecordSize {
		return "", "", "", false
	}
	view := unsafe.String(unsafe.SliceData(b), len(b)) // read only, within this call
	if !scanFlat(view, f) || f.v != recordVersion || !f.valid() {
		return "", "", "", false
	}
	meta := f.meta[:f.nMeta]
	if len(meta) > 1 {
		slices.SortFunc(meta, byKey)
		for k := 1; k < len(meta); k++ {
			if meta[k].k == meta[k-1].k {
				return "", "", "", false // repeated key: the last wins, which only the map keeps
			}
		}
	}
	s, idAt, nameAt := renderInstance(f.endpoints[:f.nEndpoints], f.id, f.name, f.version, f.zone, f.weight, f.tags[:f.nTags], meta)
	return valueIn(s, idAt, f.id), valueIn(s, nameAt, f.name), s, true
}

// valueIn returns v as s[at[0]:at[1]], where s holds v query-escaped,
// when escaping left it as it was (the same length and bytes: escaping
// lengthens whatever it changes, but for ' ' to '+'), else a copy of v.
func valueIn(s string, at [2]int, v string) string {
	if w := s[at[0]:at[1]]; w == v {
		return w
	}
	return strings.Clone(v)
}

// valid reports whether Instance.validString would accept the instance
// as scanned, with its endpoints (none: a round-1 record, left to
// DecodeRecordString) and a first endpoint whose host needs no read-back
// (plainHost). The field checks are validString's own; only the last line
// stands in for checkCarriable, which needs an Instance.
func (f *flatRecord) valid() bool {
	eps := f.endpoints[:f.nEndpoints]
	if checkHead(f.name, f.id, f.version, f.zone, f.weight) != nil ||
		checkEndpoints(f.id, eps) != nil || checkTags(f.id, f.tags[:f.nTags]) != nil {
		return false
	}
	for _, p := range f.meta[:f.nMeta] {
		if checkMetadata(f.id, p.k, p.v) != nil {
			return false
		}
	}
	return !hasCtl(f.id, f.name, f.version, f.zone) && !hasCtl(eps...) && plainHost(eps[0])
}
