package registry

import (
	"fmt"
	"strings"
)

// The field checks of Instance.Validate, one per part of an instance. The
// record decoder's fast path (flatRecord.valid) runs the same ones on the
// fields as scanned, so the two cannot drift apart. Each returns the first
// problem, wrapping ErrInvalidInstance, and allocates only then.

// checkHead checks the scalar fields.
func checkHead(name, id, version, zone string, weight int) error {
	switch {
	case !ValidName(name):
		return fmt.Errorf("%w: service name %q must match %s", ErrInvalidInstance, name, nameRE)
	case id == "":
		return fmt.Errorf("%w: %s: empty instance ID", ErrInvalidInstance, name)
	case notInID.in(id):
		return fmt.Errorf("%w: instance ID %q must not contain '/' or spaces", ErrInvalidInstance, id)
	case weight < 0:
		return fmt.Errorf("%w: %s: negative weight %d", ErrInvalidInstance, id, weight)
	}
	for _, f := range [...]struct{ name, v string }{{"instance ID", id}, {"version", version}, {"zone", zone}} {
		if len(f.v) > MaxFieldLen {
			return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalidInstance, f.name, len(f.v), MaxFieldLen)
		}
	}
	return nil
}

// checkEndpoints checks that there are 1..MaxEndpoints endpoints, each
// valid (ParseEndpoint) and within MaxFieldLen, one per scheme.
func checkEndpoints(id string, eps []string) error {
	switch {
	case len(eps) == 0:
		return fmt.Errorf("%w: %s: no endpoints", ErrInvalidInstance, id)
	case len(eps) > MaxEndpoints:
		return fmt.Errorf("%w: %s: %d endpoints, at most %d", ErrInvalidInstance, id, len(eps), MaxEndpoints)
	}
	for k, ep := range eps {
		if len(ep) > MaxFieldLen {
			return fmt.Errorf("%w: %s: endpoint of %d bytes, at most %d", ErrInvalidInstance, id, len(ep), MaxFieldLen)
		}
		scheme, _, _, err := ParseEndpoint(ep)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		// A scan, not a set: a handful of endpoints, and no allocation
		// per record of a full sync.
		for _, prev := range eps[:k] {
			if p, _, _ := strings.Cut(prev, "://"); p == scheme {
				return fmt.Errorf("%w: %s: two %s endpoints; publish one per transport", ErrInvalidInstance, id, scheme)
			}
		}
	}
	return nil
}

// checkTags checks the number of tags and the length of each.
func checkTags(id string, tags []string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("%w: %s: %d tags, at most %d", ErrInvalidInstance, id, len(tags), MaxTags)
	}
	for _, t := range tags {
		if len(t) > MaxTagLen {
			return fmt.Errorf("%w: %s: tag of %d bytes, at most %d", ErrInvalidInstance, id, len(t), MaxTagLen)
		}
	}
	return nil
}

// checkMetadata checks one metadata entry; the caller checks their number.
func checkMetadata(id, k, v string) error {
	switch {
	case k == "" || len(k) > MaxMetadataKey:
		return fmt.Errorf("%w: %s: metadata key of %d bytes, want 1..%d", ErrInvalidInstance, id, len(k), MaxMetadataKey)
	case len(v) > MaxMetadataValue:
		return fmt.Errorf("%w: %s: metadata %q is %d bytes, at most %d", ErrInvalidInstance, id, k, len(v), MaxMetadataValue)
	}
	return nil
}
