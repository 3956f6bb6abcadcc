package consul

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"encoding/json"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/warren-mesh/warren/framework/registry"
)

// go-micro's Consul registry (github.com/micro/go-micro, registry/consul:
// consul.go and encoding.go) registers each node as a Consul service named
// after the go-micro service — dotted, "go.micro.srv.greeter" — with the
// node's ID, address and port, and carries everything else in tags, each
// one value hex(zlib(JSON)) behind a one-letter prefix:
//
//	v-<…>   the service version (the JSON-less string itself, compressed)
//	t-<…>   one metadata pair per tag: {"key":"value"}
//	e-<…>   one RPC endpoint per tag: {"name":"Greeter.Hello","request":…,"response":…,"metadata":…}
//
// Older go-micro wrote the same values plain behind "v=", "t=", "e=". A
// Warren instancer reads such services: the version from the v tag, the
// metadata from the t tags (the node's "protocol" names the endpoint's
// scheme: mucp, grpc or http), the RPC endpoints' names as the metadata
// key microEndpointsKey, and keeps these tags out of Instance.Tags. A tag
// that looks like one of them but does not decode stays a plain tag.

// microEndpointsKey is the metadata key under which an instance read from
// a go-micro record lists its RPC endpoints (method names), comma-separated.
const microEndpointsKey = "micro-endpoints"

// goMicroNameRE matches go-micro's dotted service names: DNS labels joined
// by dots, at least two of them. Warren's own names (registry.ValidName)
// are single labels.
var goMicroNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)

// discoverableName reports whether an instancer may follow service: a
// Warren name, or a go-micro one (at most 253 bytes, as a DNS name).
func discoverableName(service string) bool {
	return registry.ValidName(service) || len(service) <= 253 && goMicroNameRE.MatchString(service)
}

// goMicro is what a service's go-micro tags carry.
type goMicro struct {
	found     bool
	version   string
	hasVer    bool
	metadata  map[string]string
	endpoints []string
	// rest are the tags that are not go-micro's.
	rest []string
}

// readGoMicroTags splits tags into go-micro's and the others.
func readGoMicroTags(tags []string) goMicro {
	var g goMicro
	for _, tag := range tags {
		if len(tag) < 2 || (tag[1] != '-' && tag[1] != '=') {
			g.rest = append(g.rest, tag)
			continue
		}
		raw, ok := []byte(tag[2:]), true
		if tag[1] == '-' {
			raw, ok = unhexZlib(tag[2:])
		}
		if !ok {
			g.rest = append(g.rest, tag)
			continue
		}
		switch tag[0] {
		case 'v':
			if !g.hasVer { // go-micro takes the first
				g.version, g.hasVer = string(raw), true
			}
		case 't':
			var kv map[string]string
			if json.Unmarshal(raw, &kv) != nil {
				g.rest = append(g.rest, tag)
				continue
			}
			if g.metadata == nil {
				g.metadata = map[string]string{}
			}
			for k, v := range kv {
				g.metadata[k] = v
			}
		case 'e':
			var ep struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &ep) != nil || ep.Name == "" {
				g.rest = append(g.rest, tag)
				continue
			}
			g.endpoints = append(g.endpoints, ep.Name)
		default:
			g.rest = append(g.rest, tag)
			continue
		}
		g.found = true
	}
	sort.Strings(g.endpoints)
	return g
}

// unhexZlib undoes go-micro's encode: hex, then zlib.
func unhexZlib(s string) ([]byte, bool) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, false
	}
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	defer zr.Close()
	// Bounded: a record is small; a tag inflating beyond this is not one.
	out, err := io.ReadAll(io.LimitReader(zr, registry.MaxRecordSize+1))
	if err != nil || len(out) > registry.MaxRecordSize {
		return nil, false
	}
	return out, true
}

// applyGoMicro fills inst and its metadata md from go-micro's tags:
// the version, the metadata (keys already in md win), and the RPC
// endpoints' names. It returns the scheme of the endpoint built from the
// address: go-micro's "protocol" (mucp, grpc, http) when it is a valid
// scheme, else "".
func applyGoMicro(inst *registry.Instance, md map[string]string, g goMicro) string {
	if g.hasVer && inst.Version == "" {
		inst.Version = g.version
	}
	for k, v := range g.metadata {
		if _, own := md[k]; !own {
			md[k] = v
		}
	}
	if len(g.endpoints) > 0 {
		md[microEndpointsKey] = strings.Join(g.endpoints, ",")
	}
	if p := g.metadata["protocol"]; p != "" && schemeRE.MatchString(p) {
		return p
	}
	return ""
}

var schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]{0,31}$`)

// validateDiscovered checks a discovered instance as registry.Instance.Validate
// does, except that a go-micro service name stands in for a Warren one.
func validateDiscovered(inst registry.Instance) error {
	if !registry.ValidName(inst.Name) && discoverableName(inst.Name) {
		inst.Name = "go-micro" // the rule for Warren's own names does not apply
	}
	return inst.Validate()
}
