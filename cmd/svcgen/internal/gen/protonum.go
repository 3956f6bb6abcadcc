package gen

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Field numbers are the wire identity of a protobuf field: a caller built
// from an older .proto — another language's, or an instance of the
// previous release during a rolling deploy — reads number N as the type
// its .proto gave N. So a field keeps its number for as long as it keeps
// its name and type, wherever it moves in the Go struct; a new field, or
// one whose type changed, gets the next number never used in the message;
// and a removed field's number (and name) is reserved, so neither is
// reused. The previous .proto — svcgen's own output, committed — is the
// record of the numbers.

// protoNumbers is what the previous .proto says of one message.
type protoNumbers struct {
	fields        map[string]protoPrevField // by field name
	reservedNums  []int
	reservedNames []string
}

type protoPrevField struct {
	typ string // "repeated Item", "map<string, string>", "int64"
	num int
}

var (
	protoMessageLine  = regexp.MustCompile(`^\s*message\s+([A-Za-z_]\w*)\s*\{\s*$`)
	protoFieldLine    = regexp.MustCompile(`^\s*(\S.*?)\s+([A-Za-z_]\w*)\s*=\s*(\d+)\s*;\s*$`)
	protoReservedLine = regexp.MustCompile(`^\s*reserved\s+(.+?)\s*;\s*$`)
	protoRange        = regexp.MustCompile(`^(\d+)(?:\s+to\s+(\d+))?$`)
)

// parseProtoNumbers reads the field numbers and reservations of every
// message in a .proto svcgen wrote (one field or reservation per line, as
// service.proto.tmpl writes them).
func parseProtoNumbers(b []byte) map[string]*protoNumbers {
	out := map[string]*protoNumbers{}
	var cur *protoNumbers
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		if m := protoMessageLine.FindStringSubmatch(line); m != nil {
			cur = &protoNumbers{fields: map[string]protoPrevField{}}
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
			for _, item := range strings.Split(m[1], ",") {
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
// 1, 2, … in order), and sets msg.Reserved. It returns a note for each
// field whose type changed.
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
	kept := map[string]bool{}
	var notes []string
	for _, f := range msg.Fields {
		if p, ok := prev.fields[f.Name]; ok && p.typ == f.Type {
			f.Num, kept[f.Name] = p.num, true
		}
	}
	for _, f := range msg.Fields {
		if kept[f.Name] {
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
		}
	}
	// Reserved: what was, and every previous field not kept.
	nums := slices.Clone(prev.reservedNums)
	names := slices.Clone(prev.reservedNames)
	current := map[string]bool{}
	for _, f := range msg.Fields {
		current[f.Name] = true
	}
	for name, p := range prev.fields {
		if !kept[name] {
			nums = append(nums, p.num)
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
	if len(nums) > 0 {
		s := make([]string, len(nums))
		for i, n := range nums {
			s[i] = strconv.Itoa(n)
		}
		msg.Reserved = append(msg.Reserved, strings.Join(s, ", "))
	}
	if len(names) > 0 {
		s := make([]string, len(names))
		for i, n := range names {
			s[i] = strconv.Quote(n)
		}
		msg.Reserved = append(msg.Reserved, strings.Join(s, ", "))
	}
	return notes
}
