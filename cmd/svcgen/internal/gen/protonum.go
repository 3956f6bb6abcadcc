package gen

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Field numbers are the wire identity of a protobuf field: a caller built
// from an older .proto — another language's, or an instance of the
// previous release during a rolling deploy — reads number N as the type
// its .proto gave N. So a field keeps its number for as long as it keeps
// its name and type, wherever it moves in the Go struct (a type made
// optional, or an integer widened within its signedness, int32 → int64,
// uint32 → uint64, is read alike: the number stays); a new field, or one
// whose type changed otherwise, gets the next number never used in the
// message; and a removed field's number (and name) is reserved, so
// neither is reused. The previous .proto — svcgen's own output, committed — is the
// record of the numbers.
//
// A reserved number also keeps what it was, in a comment on its line
// (`reserved 10; // was string status`): a field that comes back with
// that name and that type — a revert, the common case — is the same field
// on the wire, and gets its number back, so callers built before the
// removal see it again instead of silently reading it as empty. A .proto
// written before svcgen kept these comments has reserved numbers of no
// known identity, which are never given back.

// protoNumbers is what the previous .proto says of one message.
type protoNumbers struct {
	fields        map[string]protoPrevField // by field name
	reservedNums  []int
	reservedNames []string
	// was is what a reserved number was, where its line says.
	was map[int]protoPrevField
}

type protoPrevField struct {
	typ  string // "repeated Item", "map<string, string>", "int64"
	num  int
	name string // set in protoNumbers.was only
}

// protoReserved is one reserved line of a message: List is what follows
// `reserved`, Was (a single number's line only) the field it was, "TYPE
// NAME", written as the line's trailing comment.
type protoReserved struct {
	List string
	Was  string
}

var (
	protoMessageLine  = regexp.MustCompile(`^\s*message\s+([A-Za-z_]\w*)\s*\{\s*$`)
	protoFieldLine    = regexp.MustCompile(`^\s*(\S.*?)\s+([A-Za-z_]\w*)\s*=\s*(\d+)\s*;\s*$`)
	protoReservedLine = regexp.MustCompile(`^\s*reserved\s+(.+?)\s*;\s*$`)
	protoRange        = regexp.MustCompile(`^(\d+)(?:\s+to\s+(\d+))?$`)
	protoWasComment   = regexp.MustCompile(`^\s*was\s+(\S.*?)\s+([A-Za-z_]\w*)\s*$`)
)

// parseProtoNumbers reads the field numbers and reservations of every
// message in a .proto svcgen wrote (one field or reservation per line, as
// service.proto.tmpl writes them).
func parseProtoNumbers(b []byte) map[string]*protoNumbers {
	out := map[string]*protoNumbers{}
	var cur *protoNumbers
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, comment := sc.Text(), ""
		if i := strings.Index(line, "//"); i >= 0 {
			line, comment = line[:i], line[i+2:]
		}
		if m := protoMessageLine.FindStringSubmatch(line); m != nil {
			cur = &protoNumbers{fields: map[string]protoPrevField{}, was: map[int]protoPrevField{}}
			out[m[1]] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if strings.TrimSpace(line) == "}" {
			cur = nil
			continue
		}
		if m := protoReservedLine.FindStringSubmatch(line); m != nil {
			items := strings.Split(m[1], ",")
			for _, item := range items {
				item = strings.TrimSpace(item)
				if n, err := strconv.Unquote(item); err == nil {
					cur.reservedNames = append(cur.reservedNames, n)
					continue
				}
				if r := protoRange.FindStringSubmatch(item); r != nil {
					lo, _ := strconv.Atoi(r[1])
					hi := lo
					if r[2] != "" {
						hi, _ = strconv.Atoi(r[2])
					}
					for n := lo; n <= hi && n-lo < 1<<16; n++ {
						cur.reservedNums = append(cur.reservedNums, n)
					}
					// Only a line reserving one number says what it was.
					if w := protoWasComment.FindStringSubmatch(comment); w != nil && len(items) == 1 && r[2] == "" {
						cur.was[lo] = protoPrevField{typ: strings.Join(strings.Fields(w[1]), " "), num: lo, name: w[2]}
					}
				}
			}
			continue
		}
		if m := protoFieldLine.FindStringSubmatch(line); m != nil {
			n, err := strconv.Atoi(m[3])
			if err == nil {
				cur.fields[m[2]] = protoPrevField{typ: strings.Join(strings.Fields(m[1]), " "), num: n}
			}
		}
	}
	return out
}

// protoFirstReserved..protoLastReserved are protobuf's own numbers, which
// a .proto may not use.
const protoFirstReserved, protoLastReserved = 19000, 19999

// number gives each field of msg its number, keeping those of prev (nil:
// 1, 2, … in order) and giving back a reserved number to the field it
// was, and sets msg.Reserved. It returns a note for each change a caller
// built from the previous .proto does not see: a field whose type
// changed, a removed field that comes back as another type, and fields
// gone while others are new (a rename, likely); and for a field widened,
// which keeps its number but whose larger values such a caller reads
// truncated.
func (msg *protoMessage) number(prev *protoNumbers) []string {
	if prev == nil {
		prev = &protoNumbers{}
	}
	// next is above every number the message ever used: its fields' and
	// its reserved ones.
	next := 1
	for _, f := range prev.fields {
		next = max(next, f.num+1)
	}
	for _, n := range prev.reservedNums {
		next = max(next, n+1)
	}
	kept := map[string]bool{}   // field names whose number stays
	taken := map[int]bool{}     // numbers of this version's fields
	restored := map[int]bool{}  // reserved numbers given back
	back := map[string]string{} // name → note, for a field that had a number before
	var widenings []string      // notes on fields widened that keep their number
	for _, f := range msg.Fields {
		if p, ok := prev.fields[f.Name]; ok && keepsNumber(p.typ, f.Type) {
			f.Num, kept[f.Name], taken[p.num] = p.num, true, true
			if _, ok := widened(p.typ, f.Type); ok {
				widenings = append(widenings, widenedNote(msg.Name, f.Name, p.typ, f.Type, p.num, false))
			}
		}
	}
	// A field that comes back with the name and type a reserved number
	// had is that field again on the wire: it gets the number back.
	wasNums := slices.Sorted(maps.Keys(prev.was))
	for _, f := range msg.Fields {
		if kept[f.Name] {
			continue
		}
		for _, n := range wasNums {
			if w := prev.was[n]; w.name == f.Name && keepsNumber(w.typ, f.Type) && !taken[n] && slices.Contains(prev.reservedNums, n) {
				f.Num, taken[n], restored[n] = n, true, true
				if _, ok := widened(w.typ, f.Type); ok {
					widenings = append(widenings, widenedNote(msg.Name, f.Name, w.typ, f.Type, n, true))
				}
				if p, ok := prev.fields[f.Name]; ok {
					back[f.Name] = fmt.Sprintf("%s.%s changed type in the .proto back to the one it had as field %d (%s → %s), so it is field %d again and %d is reserved: "+
						"callers built from the old .proto leave the field empty rather than misread it",
						msg.Name, f.Name, n, p.typ, f.Type, n, p.num)
				} else {
					back[f.Name] = ""
				}
				break
			}
		}
	}
	notes := widenings
	var fresh []*protoField // new fields no other note is about
	for _, f := range msg.Fields {
		if kept[f.Name] {
			continue
		}
		if note, ok := back[f.Name]; ok {
			if note != "" {
				notes = append(notes, note)
			}
			continue
		}
		if next >= protoFirstReserved && next <= protoLastReserved {
			next = protoLastReserved + 1
		}
		f.Num = next
		next++
		if p, ok := prev.fields[f.Name]; ok {
			notes = append(notes, fmt.Sprintf("%s.%s changed type in the .proto (%s → %s), so it is field %d now and %d is reserved: "+
				"callers built from the old .proto leave the field empty rather than misread it",
				msg.Name, f.Name, p.typ, f.Type, f.Num, p.num))
			continue
		}
		if w, ok := prev.wasNamed(f.Name); ok {
			notes = append(notes, fmt.Sprintf("%s.%s was field %d (%s) until it was removed; it comes back as %s, so it is field %d now and %d stays reserved: "+
				"callers built before the removal leave the field empty rather than misread it",
				msg.Name, f.Name, w.num, w.typ, f.Type, f.Num, w.num))
			continue
		}
		if slices.Contains(prev.reservedNames, f.Name) {
			notes = append(notes, fmt.Sprintf("%s.%s was removed before and comes back as field %d, a new field: the .proto does not say which number it had "+
				"(it was written by an svcgen that did not record it), so callers built before the removal will not see it",
				msg.Name, f.Name, f.Num))
			continue
		}
		fresh = append(fresh, f)
	}
	current := map[string]bool{}
	for _, f := range msg.Fields {
		current[f.Name] = true
	}
	// Fields gone while others are new: most likely a renamed JSON name,
	// which is a new field on the wire.
	var gone []string
	for _, name := range slices.Sorted(maps.Keys(prev.fields)) {
		if !current[name] {
			gone = append(gone, fmt.Sprintf("%s.%s (field %d)", msg.Name, name, prev.fields[name].num))
		}
	}
	if len(gone) > 0 && len(fresh) > 0 {
		var added []string
		for _, f := range fresh {
			added = append(added, fmt.Sprintf("%s.%s", msg.Name, f.Name))
		}
		nums := make([]string, len(fresh))
		for i, f := range fresh {
			nums[i] = strconv.Itoa(f.Num)
		}
		notes = append(notes, fmt.Sprintf("%s %s gone and %s %s new (%s %s): callers built before will not see %s — a renamed JSON name is a new field on the wire",
			strings.Join(gone, ", "), plural(len(gone), "is", "are"), strings.Join(added, ", "), plural(len(fresh), "is", "are"),
			plural(len(fresh), "field", "fields"), strings.Join(nums, ", "), plural(len(fresh), "it", "them")))
	}

	// Reserved: what was and is not given back, and every previous field
	// not kept, with what it was.
	was := map[int]protoPrevField{}
	var nums []int
	for _, n := range prev.reservedNums {
		if restored[n] {
			continue
		}
		nums = append(nums, n)
		if w, ok := prev.was[n]; ok {
			was[n] = w
		}
	}
	names := slices.Clone(prev.reservedNames)
	for name, p := range prev.fields {
		if !kept[name] {
			nums = append(nums, p.num)
			was[p.num] = protoPrevField{typ: p.typ, num: p.num, name: name}
			if !current[name] {
				names = append(names, name)
			}
		}
	}
	// A name in use again is not reserved any more (protoc refuses both).
	names = slices.DeleteFunc(names, func(n string) bool { return current[n] })
	slices.Sort(nums)
	nums = slices.Compact(nums)
	slices.Sort(names)
	names = slices.Compact(names)
	msg.Reserved = nil
	// Numbers of no known identity (a .proto of an older svcgen) on one
	// line, as before; each known one on its own line, saying what it was.
	var unknown []string
	for _, n := range nums {
		if _, ok := was[n]; !ok {
			unknown = append(unknown, strconv.Itoa(n))
		}
	}
	if len(unknown) > 0 {
		msg.Reserved = append(msg.Reserved, protoReserved{List: strings.Join(unknown, ", ")})
	}
	for _, n := range nums {
		if w, ok := was[n]; ok {
			msg.Reserved = append(msg.Reserved, protoReserved{List: strconv.Itoa(n), Was: w.typ + " " + w.name})
		}
	}
	if len(names) > 0 {
		s := make([]string, len(names))
		for i, n := range names {
			s[i] = strconv.Quote(n)
		}
		msg.Reserved = append(msg.Reserved, protoReserved{List: strings.Join(s, ", ")})
	}
	return notes
}

// wasNamed is the lowest reserved number that was a field of that name.
func (p *protoNumbers) wasNamed(name string) (protoPrevField, bool) {
	for _, n := range slices.Sorted(maps.Keys(p.was)) {
		if p.was[n].name == name && slices.Contains(p.reservedNums, n) {
			return p.was[n], true
		}
	}
	return protoPrevField{}, false
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sameOnWire reports whether two .proto field types are read alike: a
// scalar and the same scalar made optional are (proto3 optional only adds
// presence), so a field that becomes a pointer keeps its number.
func sameOnWire(a, b string) bool {
	return strings.TrimPrefix(a, "optional ") == strings.TrimPrefix(b, "optional ")
}

// protoWidenings are the scalar changes protobuf reads alike and without
// loss in the direction of the change: int32 and int64 (uint32 and
// uint64) are the same varint on the wire, an int32 sign-extended to 64
// bits, so a reader of the wider type reads every value of the narrower
// one exactly. The other way a reader truncates to 32 bits, silently, and
// signed and unsigned read each other's negative values as others: those
// changes get a new number.
var protoWidenings = map[string]string{"int32": "int64", "uint32": "uint64"}

// widened reports whether .proto type b is a as a wider integer of the
// same signedness — the scalar itself, optional or not, the elements of a
// repeated field or the values of a map — and returns the scalar a had
// ("int32"). Such a field keeps its number: callers of either .proto read
// what the other sends, but a value beyond the narrower range reaches a
// caller of the old .proto truncated.
func widened(a, b string) (string, bool) {
	a, b = strings.TrimPrefix(a, "optional "), strings.TrimPrefix(b, "optional ")
	if ea, ok := strings.CutPrefix(a, "repeated "); ok {
		eb, ok := strings.CutPrefix(b, "repeated ")
		if !ok {
			return "", false
		}
		a, b = ea, eb
	} else if strings.HasPrefix(a, "map<") {
		ka, va, okA := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(a, "map<"), ">"), ",")
		kb, vb, okB := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(b, "map<"), ">"), ",")
		if !okA || !okB || !strings.HasPrefix(b, "map<") || strings.TrimSpace(ka) != strings.TrimSpace(kb) {
			return "", false
		}
		a, b = strings.TrimSpace(va), strings.TrimSpace(vb)
	}
	if w, ok := protoWidenings[a]; ok && w == b {
		return a, true
	}
	return "", false
}

// keepsNumber reports whether a field of .proto type a keeps its number as
// type b: the same on the wire, or widened.
func keepsNumber(a, b string) bool {
	_, ok := widened(a, b)
	return ok || sameOnWire(a, b)
}

// widenedNote is gen's note on a field widened from type a to b that keeps
// number num (restored: gets it back, a reserved number).
func widenedNote(msg, field, a, b string, num int, restored bool) string {
	scalar, _ := widened(a, b)
	keeps := "keeps"
	if restored {
		keeps = "gets back"
	}
	return fmt.Sprintf("%s.%s widened in the .proto (%s → %s) and %s field %d: protobuf reads %s and %s alike, "+
		"so callers built from the old .proto still read it, but a value beyond the %s range reaches them truncated by protobuf, silently: "+
		"deploy the widened version everywhere before you send such values",
		msg, field, a, b, keeps, num, scalar, protoWidenings[scalar], scalar)
}
