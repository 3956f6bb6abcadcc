package registry

import (
	"slices"
	"unicode/utf8"
)

// scanRecord is the fast path of DecodeRecord: a scanner for records as
// EncodeRecord writes them (plain JSON: integer numbers, strings without
// escapes or control characters, the record's own keys, each once). A
// full sync reads every record of a service, and encoding/json's
// reflection was most of that cost. Anything else — an escape, an unknown
// or repeated key, null, a float, odd UTF-8 — reports ok=false and
// DecodeRecord falls back to encoding/json, so what the scanner accepts it
// decodes exactly as encoding/json does (FuzzScanRecord checks that).
//
// The record is copied into one string and every string field is a
// substring of it: one allocation instead of one per field. Whoever keeps
// a field keeps the record (at most MaxRecordSize); the instancers keep
// only the instance string, which String builds anew.
func scanRecord(b []byte) (r record, ok bool) {
	var f flatRecord
	if !scanFlat(string(b), &f) {
		return r, false
	}
	r.V = f.v
	r.Instance = storedInstance{
		ID: f.id, Name: f.name, Address: f.address, Port: f.port, Scheme: f.scheme,
		Version: f.version, Zone: f.zone, Weight: f.weight,
	}
	if f.hasEndpoints {
		r.Instance.Endpoints = slices.Clone(f.endpoints[:f.nEndpoints:f.nEndpoints])
	}
	if f.hasTags {
		r.Instance.Tags = slices.Clone(f.tags[:f.nTags:f.nTags])
	}
	if f.hasMeta {
		r.Instance.Metadata = make(map[string]string, f.nMeta)
		for _, p := range f.meta[:f.nMeta] {
			r.Instance.Metadata[p.k] = p.v // a repeated key: the last wins, as in encoding/json
		}
	}
	return r, true
}

// flatRecord is a stored record as the scanner reads it, before any map
// or Instance is made: strings are substrings of the record, lists in
// arrays sized to the limits (a record with more is left to
// encoding/json, and then refused by validation), metadata pairs in
// record order (a key may repeat). Arrays, not slices: the scanner stores
// through a pointer, and a slice stored so would move its buffer to the
// heap — the allocations this type exists to avoid.
type flatRecord struct {
	v                                        int
	id, name, address, scheme, version, zone string
	port, weight                             int

	endpoints    [MaxEndpoints]string
	nEndpoints   int
	hasEndpoints bool // "endpoints" was an array ([] is empty, not nil)
	tags         [MaxTags]string
	nTags        int
	hasTags      bool
	meta         [MaxMetadata]metaPair
	nMeta        int
	hasMeta      bool // "metadata" was an object ({} is an empty map, not nil)
}

// metaPair is one metadata entry.
type metaPair struct{ k, v string }

// scanFlat scans the record b into f and reports whether the scanner
// could read it (see scanRecord).
func scanFlat(b string, f *flatRecord) bool {
	s := scanner{b: b}
	var seenV, seenInst bool
	ok := s.object(func(key string) bool {
		switch {
		case key == "v" && !seenV:
			seenV = true
			var ok bool
			f.v, ok = s.int()
			return ok
		case key == "instance" && !seenInst:
			seenInst = true
			return s.instance(f)
		}
		return false
	})
	s.space()
	return ok && s.i == len(s.b)
}

type scanner struct {
	b string
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// byte skips space and consumes c.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek skips space and reports whether c is next, without consuming it.
func (s *scanner) peek(c byte) bool {
	s.space()
	return s.i < len(s.b) && s.b[s.i] == c
}

// object reads {"key": value, ...}, calling member after each key's
// colon to read its value.
func (s *scanner) object(member func(key string) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') || !member(key) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// strs reads an array of strings into dst and returns how many it read,
// or ok=false if there are more than dst holds.
func (s *scanner) strs(dst []string) (n int, ok bool) {
	if !s.byte('[') {
		return 0, false
	}
	if s.byte(']') {
		return 0, true
	}
	for {
		v, ok := s.str()
		if !ok || n == len(dst) {
			return 0, false
		}
		dst[n] = v
		n++
		if s.byte(']') {
			return n, true
		}
		if !s.byte(',') {
			return 0, false
		}
	}
}

// str reads a string with no escapes and no control characters, and
// valid UTF-8 (encoding/json would replace invalid bytes).
func (s *scanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
		s.i++
	}
	return "", false
}

// int reads an integer of at most 9 digits (no fraction, no exponent,
// no leading zero), which fits every int field of a record.
func (s *scanner) int() (int, bool) {
	s.space()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start, n := s.i, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' && s.i-start < 10 {
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
	}
	digits := s.i - start
	if digits == 0 || digits > 9 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// instance reads the stored instance object.
func (s *scanner) instance(in *flatRecord) bool {
	var seen uint16
	return s.object(func(key string) bool {
		f := instanceField(key)
		if f < 0 || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		var ok bool
		switch key {
		case "id":
			in.id, ok = s.str()
		case "name":
			in.name, ok = s.str()
		case "endpoints":
			in.nEndpoints, ok = s.strs(in.endpoints[:])
			in.hasEndpoints = true
		case "address":
			in.address, ok = s.str()
		case "port":
			in.port, ok = s.int()
		case "scheme":
			in.scheme, ok = s.str()
		case "version":
			in.version, ok = s.str()
		case "zone":
			in.zone, ok = s.str()
		case "weight":
			in.weight, ok = s.int()
		case "tags":
			in.nTags, ok = s.strs(in.tags[:])
			in.hasTags = true
		case "metadata":
			if s.peek('n') {
				return false // null: leave it to encoding/json
			}
			in.hasMeta = true
			ok = s.object(func(k string) bool {
				v, ok := s.str()
				if !ok || in.nMeta == len(in.meta) {
					return false
				}
				in.meta[in.nMeta] = metaPair{k, v}
				in.nMeta++
				return true
			})
		}
		return ok
	})
}

// instanceField numbers the stored instance's JSON keys, matched exactly
// (encoding/json also matches them case-insensitively: left to it), or
// gives -1.
func instanceField(key string) int {
	switch key {
	case "id":
		return 0
	case "name":
		return 1
	case "endpoints":
		return 2
	case "address":
		return 3
	case "port":
		return 4
	case "scheme":
		return 5
	case "version":
		return 6
	case "zone":
		return 7
	case "weight":
		return 8
	case "tags":
		return 9
	case "metadata":
		return 10
	}
	return -1
}
