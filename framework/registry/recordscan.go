package registry

import "unicode/utf8"

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
	s := scanner{b: string(b)}
	var seenV, seenInst bool
	ok = s.object(func(key string) bool {
		switch {
		case key == "v" && !seenV:
			seenV = true
			r.V, ok = s.int()
			return ok
		case key == "instance" && !seenInst:
			seenInst = true
			return s.instance(&r.Instance)
		}
		return false
	})
	s.space()
	return r, ok && s.i == len(s.b)
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

// strs reads an array of strings; [] gives an empty, non-nil slice, as
// encoding/json does.
func (s *scanner) strs() ([]string, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := []string{}
	if s.byte(']') {
		return out, true
	}
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
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
func (s *scanner) instance(in *storedInstance) bool {
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
			in.ID, ok = s.str()
		case "name":
			in.Name, ok = s.str()
		case "endpoints":
			in.Endpoints, ok = s.strs()
		case "address":
			in.Address, ok = s.str()
		case "port":
			in.Port, ok = s.int()
		case "scheme":
			in.Scheme, ok = s.str()
		case "version":
			in.Version, ok = s.str()
		case "zone":
			in.Zone, ok = s.str()
		case "weight":
			in.Weight, ok = s.int()
		case "tags":
			in.Tags, ok = s.strs()
		case "metadata":
			if s.peek('n') {
				return false // null: leave it to encoding/json
			}
			in.Metadata = map[string]string{}
			ok = s.object(func(k string) bool {
				v, ok := s.str()
				in.Metadata[k] = v // a repeated key: the last wins, as in encoding/json
				return ok
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
