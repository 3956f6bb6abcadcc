package gen

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// acct is a gRPC service whose request type is FIELDS.
const acct = `package acct

import (
	"context"
	"time"
)

//warren:grpc
type Service interface {
	Open(ctx context.Context, req OpenRequest) (OpenResponse, error)
}

type OpenRequest struct {
FIELDS
}

type OpenResponse struct {
	ID string ` + "`json:\"id\"`" + `
}

var _ = time.Second
`

const acctProto = "acctpb/acct.proto"

// genAcct generates the service with fields and the previous .proto (nil:
// none, a new service) and returns the new .proto and gen's notes.
func genAcct(t *testing.T, fields string, prev []byte) (string, []string) {
	t.Helper()
	var dir fs.FS // nil: a new service, which gets no note about numbering afresh
	if prev != nil {
		dir = fstest.MapFS{acctProto: &fstest.MapFile{Data: prev}}
	}
	src := strings.Replace(acct, "FIELDS", fields, 1)
	out, err := Generate("services/acct", "acct", module, map[string][]byte{"service.go": []byte(src)}, dir)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, n := range out.Notes {
		if strings.HasPrefix(n, "services/acct/"+acctProto+": ") {
			notes = append(notes, n)
		}
	}
	return string(out.Files[acctProto]), notes
}

// message is the body of a message of a .proto, a line each, trimmed.
func message(proto, name string) []string {
	m := regexp.MustCompile(`(?s)message ` + name + ` \{\n(.*?)\n\}`).FindStringSubmatch(proto)
	if m == nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(m[1], "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// TestProtoNumbers_StayWithTheFieldAcrossEdits: each edit of the Go
// request type keeps the number of every field that kept its name and
// type; a new field (or one whose type changed) gets a number never used
// in the message; a removed field's number and name are reserved, the
// number with what it was, so that the field coming back with that name
// and type (a revert) gets it back, and with another type does not; and
// a run on its own output changes nothing.
func TestProtoNumbers_StayWithTheFieldAcrossEdits(t *testing.T) {
	steps := []struct {
		name   string
		fields string
		want   []string
		note   string // a note contains this ("" : no note)
	}{
		{"first", "\tOwner string `json:\"owner\"`\n\tLimit int64 `json:\"limit\"`\n\tTags []string `json:\"tags\"`",
			[]string{"string owner = 1;", "int64 limit = 2;", "repeated string tags = 3;"}, ""},
		{"a field inserted in the middle gets the next number",
			"\tOwner string `json:\"owner\"`\n\tNote string `json:\"note\"`\n\tLimit int64 `json:\"limit\"`\n\tTags []string `json:\"tags\"`",
			[]string{"string owner = 1;", "string note = 4;", "int64 limit = 2;", "repeated string tags = 3;"}, ""},
		{"fields moved keep theirs",
			"\tTags []string `json:\"tags\"`\n\tLimit int64 `json:\"limit\"`\n\tOwner string `json:\"owner\"`\n\tNote string `json:\"note\"`",
			[]string{"repeated string tags = 3;", "int64 limit = 2;", "string owner = 1;", "string note = 4;"}, ""},
		{"a removed field's number and name are reserved, the number saying what it was",
			"\tTags []string `json:\"tags\"`\n\tLimit int64 `json:\"limit\"`\n\tNote string `json:\"note\"`",
			[]string{"repeated string tags = 3;", "int64 limit = 2;", "string note = 4;", "reserved 1; // was string owner", `reserved "owner";`}, ""},
		{"a changed type gets a new number; the old one is reserved",
			"\tTags []string `json:\"tags\"`\n\tLimit string `json:\"limit\"`\n\tNote string `json:\"note\"`",
			[]string{"repeated string tags = 3;", "string limit = 5;", "string note = 4;", "reserved 1; // was string owner", "reserved 2; // was int64 limit", `reserved "owner";`},
			"OpenRequest.limit changed type in the .proto (int64 → string), so it is field 5 now and 2 is reserved"},
		{"a removed field back with its name and type gets its number back",
			"\tTags []string `json:\"tags\"`\n\tLimit string `json:\"limit\"`\n\tNote string `json:\"note\"`\n\tOwner string `json:\"owner\"`",
			[]string{"repeated string tags = 3;", "string limit = 5;", "string note = 4;", "string owner = 1;", "reserved 2; // was int64 limit"}, ""},
		{"a type changed back gets its old number back",
			"\tTags []string `json:\"tags\"`\n\tLimit int64 `json:\"limit\"`\n\tNote string `json:\"note\"`\n\tOwner string `json:\"owner\"`",
			[]string{"repeated string tags = 3;", "int64 limit = 2;", "string note = 4;", "string owner = 1;", "reserved 5; // was string limit"},
			"OpenRequest.limit changed type in the .proto back to the one it had as field 2 (string → int64), so it is field 2 again and 5 is reserved"},
		{"removed again",
			"\tTags []string `json:\"tags\"`\n\tLimit int64 `json:\"limit\"`\n\tNote string `json:\"note\"`",
			[]string{"repeated string tags = 3;", "int64 limit = 2;", "string note = 4;", "reserved 1; // was string owner", "reserved 5; // was string limit", `reserved "owner";`}, ""},
		{"a removed name back with another type is a new field and no longer reserved; its old number stays reserved",
			"\tTags []string `json:\"tags\"`\n\tLimit int64 `json:\"limit\"`\n\tNote string `json:\"note\"`\n\tOwner []byte `json:\"owner\"`\n\tAt time.Time `json:\"at\"`",
			[]string{"repeated string tags = 3;", "int64 limit = 2;", "string note = 4;", "bytes owner = 6;", "google.protobuf.Timestamp at = 7;",
				"reserved 1; // was string owner", "reserved 5; // was string limit"},
			"OpenRequest.owner was field 1 (string) until it was removed; it comes back as bytes, so it is field 6 now and 1 stays reserved"},
		{"a field gone while another is new is said (a rename, likely)",
			"\tTags []string `json:\"tags\"`\n\tLimit int64 `json:\"limit\"`\n\tMemo string `json:\"memo\"`\n\tOwner []byte `json:\"owner\"`\n\tAt time.Time `json:\"at\"`",
			[]string{"repeated string tags = 3;", "int64 limit = 2;", "string memo = 8;", "bytes owner = 6;", "google.protobuf.Timestamp at = 7;",
				"reserved 1; // was string owner", "reserved 4; // was string note", "reserved 5; // was string limit", `reserved "note";`},
			"OpenRequest.note (field 4) is gone and OpenRequest.memo is new (field 8): callers built before will not see it — a renamed JSON name is a new field on the wire"},
	}
	var prev []byte
	for _, s := range steps {
		proto, notes := genAcct(t, s.fields, prev)
		if got := message(proto, "OpenRequest"); !slices.Equal(got, s.want) {
			t.Fatalf("%s: OpenRequest is\n  %s\nwant\n  %s", s.name, strings.Join(got, "\n  "), strings.Join(s.want, "\n  "))
		}
		if got := message(proto, "OpenResponse"); !slices.Equal(got, []string{"string id = 1;"}) {
			t.Errorf("%s: OpenResponse is %q", s.name, got)
		}
		joined := strings.Join(notes, "\n")
		if s.note == "" && len(notes) > 0 || s.note != "" && (len(notes) != 1 || !strings.Contains(joined, s.note)) {
			t.Errorf("%s: notes %q, want one containing %q (none: no note)", s.name, notes, s.note)
		}
		again, notes := genAcct(t, s.fields, []byte(proto))
		if again != proto || len(notes) != 0 {
			t.Fatalf("%s: a second run changes the .proto or notes %q:\n%s", s.name, notes, lineDiff([]byte(proto), []byte(again)))
		}
		prev = []byte(proto)
	}
}

// TestProtoNumbers_SkipProtobufsOwnRange: numbers 19000–19999 are
// protobuf's; the next field after 18999 is 20000.
func TestProtoNumbers_SkipProtobufsOwnRange(t *testing.T) {
	prev := []byte("message OpenRequest {\n  string owner = 18999;\n}\n")
	proto, _ := genAcct(t, "\tOwner string `json:\"owner\"`\n\tNote string `json:\"note\"`", prev)
	if got, want := message(proto, "OpenRequest"), []string{"string owner = 18999;", "string note = 20000;"}; !slices.Equal(got, want) {
		t.Errorf("OpenRequest is %q, want %q", got, want)
	}
}

// A message the service stops using keeps its numbers and names reserved
// in the .proto; when a message of that name comes back, its new fields
// get numbers never used before, so a caller built from the first .proto
// cannot misread them, and a field back with its old name and type gets
// its number back. (Found in users' journeys: Restock removed, then added
// again with other fields, numbered from 1 again — an old caller's item
// read as the new id; and ListItems removed, then restored as it was,
// numbered anew — an old caller's filter ignored, its items unseen.)
func TestProtoNumbers_AMessageNoLongerUsedKeepsItsNumbersReserved(t *testing.T) {
	first, _ := genAcct(t, "\tOwner string `json:\"owner\"`\n\tLimit int64 `json:\"limit\"`", nil)

	// The method now takes another type: OpenRequest is no longer used.
	src := strings.Replace(strings.Replace(acct, "req OpenRequest", "req OpenArgs", 1), "type OpenRequest struct", "type OpenArgs struct", 1)
	src = strings.Replace(src, "FIELDS", "\tOwner string `json:\"owner\"`", 1)
	out, err := Generate("services/acct", "acct", module, map[string][]byte{"service.go": []byte(src)},
		fstest.MapFS{acctProto: &fstest.MapFile{Data: []byte(first)}})
	if err != nil {
		t.Fatal(err)
	}
	retired := string(out.Files[acctProto])
	if got, want := message(retired, "OpenRequest"), []string{"reserved 1; // was string owner", "reserved 2; // was int64 limit", `reserved "limit", "owner";`}; !slices.Equal(got, want) {
		t.Fatalf("the unused OpenRequest is %q, want %q:\n%s", got, want, retired)
	}
	if !strings.Contains(retired, "// OpenRequest is no longer used by the service.") {
		t.Errorf("the retired message does not say why it is there:\n%s", retired)
	}
	again, err := Generate("services/acct", "acct", module, map[string][]byte{"service.go": []byte(src)},
		fstest.MapFS{acctProto: &fstest.MapFile{Data: []byte(retired)}})
	if err != nil || string(again.Files[acctProto]) != retired {
		t.Fatalf("a second run changes the .proto (%v):\n%s", err, lineDiff([]byte(retired), again.Files[acctProto]))
	}

	// It comes back with another field: that one reuses neither 1 nor 2,
	// and owner, with its name and type, is 1 again.
	back, notes := genAcct(t, "\tID string `json:\"id\"`\n\tOwner string `json:\"owner\"`", []byte(retired))
	if got, want := message(back, "OpenRequest"), []string{"string id = 3;", "string owner = 1;", "reserved 2; // was int64 limit", `reserved "limit";`}; !slices.Equal(got, want) {
		t.Fatalf("OpenRequest back is %q, want %q", got, want)
	}
	if strings.Count(back, "message OpenRequest {") != 1 {
		t.Fatalf("OpenRequest twice:\n%s", back)
	}
	if len(notes) != 0 {
		t.Errorf("notes %q, want none", notes)
	}

	// Back exactly as it was (a revert): the first .proto's message.
	reverted, _ := genAcct(t, "\tOwner string `json:\"owner\"`\n\tLimit int64 `json:\"limit\"`", []byte(retired))
	if got, want := message(reverted, "OpenRequest"), message(first, "OpenRequest"); !slices.Equal(got, want) {
		t.Fatalf("OpenRequest reverted is %q, want %q as at first", got, want)
	}
}

// TestProtoNumbers_OlderProtoWithoutWhatReservedNumbersWere: a .proto of
// an svcgen that did not write what a reserved number was still works: its
// numbers stay reserved, on their line as before, and are never given
// back; a reserved name coming back is a new field, and gen says so.
func TestProtoNumbers_OlderProtoWithoutWhatReservedNumbersWere(t *testing.T) {
	prev := []byte("message OpenRequest {\n  repeated string tags = 3;\n  reserved 1, 2;\n  reserved \"limit\", \"owner\";\n}\n")
	proto, notes := genAcct(t, "\tTags []string `json:\"tags\"`\n\tOwner string `json:\"owner\"`", prev)
	if got, want := message(proto, "OpenRequest"), []string{"repeated string tags = 3;", "string owner = 4;", "reserved 1, 2;", `reserved "limit";`}; !slices.Equal(got, want) {
		t.Fatalf("OpenRequest is %q, want %q", got, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "OpenRequest.owner was removed before and comes back as field 4, a new field") {
		t.Errorf("notes %q, want one that owner is a new field", notes)
	}
	// A hand-written range says nothing of what its numbers were.
	prev = []byte("message OpenRequest {\n  repeated string tags = 3;\n  reserved 1 to 2; // was string owner\n}\n")
	proto, _ = genAcct(t, "\tTags []string `json:\"tags\"`\n\tOwner string `json:\"owner\"`", prev)
	if got, want := message(proto, "OpenRequest"), []string{"repeated string tags = 3;", "string owner = 4;", "reserved 1, 2;"}; !slices.Equal(got, want) {
		t.Fatalf("OpenRequest after a range is %q, want %q", got, want)
	}
}

// TestProtoNumbers_ARestoredTypeOfSeveralWordsGetsItsNumberBack: what a
// reserved number was is read back whole when its type is more than one
// word (repeated, map).
func TestProtoNumbers_ARestoredTypeOfSeveralWordsGetsItsNumberBack(t *testing.T) {
	fields := "\tOwner string `json:\"owner\"`\n\tTags []string `json:\"tags\"`\n\tByKind map[string]int64 `json:\"by_kind\"`"
	first, _ := genAcct(t, fields, nil)
	removed, _ := genAcct(t, "\tOwner string `json:\"owner\"`", []byte(first))
	if got, want := message(removed, "OpenRequest"), []string{"string owner = 1;", "reserved 2; // was repeated string tags",
		"reserved 3; // was map<string, int64> by_kind", `reserved "by_kind", "tags";`}; !slices.Equal(got, want) {
		t.Fatalf("OpenRequest without tags and by_kind is %q, want %q", got, want)
	}
	back, notes := genAcct(t, fields, []byte(removed))
	if got, want := message(back, "OpenRequest"), message(first, "OpenRequest"); !slices.Equal(got, want) || len(notes) != 0 {
		t.Fatalf("OpenRequest restored is %q (notes %q), want %q as at first", got, notes, want)
	}
}

// TestProtoNumbers_AFieldMadeAPointerKeepsItsNumber: a scalar that becomes
// a pointer is proto3 optional, read alike on the wire (optional only adds
// presence), so it keeps its number, with no note, and back again; a
// pointer to a time is the same Timestamp message.
func TestProtoNumbers_AFieldMadeAPointerKeepsItsNumber(t *testing.T) {
	var prev []byte
	for _, s := range []struct {
		fields string
		want   []string
	}{
		{"\tNote string `json:\"note\"`\n\tAt time.Time `json:\"at\"`\n\tN int `json:\"n\"`",
			[]string{"string note = 1;", "google.protobuf.Timestamp at = 2;", "int64 n = 3;"}},
		{"\tNote *string `json:\"note\"`\n\tAt *time.Time `json:\"at\"`\n\tN *int `json:\"n\"`",
			[]string{"optional string note = 1;", "google.protobuf.Timestamp at = 2;", "optional int64 n = 3;"}},
		{"\tNote string `json:\"note\"`\n\tAt time.Time `json:\"at\"`\n\tN *int `json:\"n\"`",
			[]string{"string note = 1;", "google.protobuf.Timestamp at = 2;", "optional int64 n = 3;"}},
		{"\tNote string `json:\"note\"`\n\tAt time.Time `json:\"at\"`",
			[]string{"string note = 1;", "google.protobuf.Timestamp at = 2;", "reserved 3; // was optional int64 n", `reserved "n";`}},
		{"\tNote string `json:\"note\"`\n\tAt time.Time `json:\"at\"`\n\tN int `json:\"n\"`",
			[]string{"string note = 1;", "google.protobuf.Timestamp at = 2;", "int64 n = 3;"}},
	} {
		proto, notes := genAcct(t, s.fields, prev)
		if got := message(proto, "OpenRequest"); !slices.Equal(got, s.want) {
			t.Fatalf("%q: OpenRequest is\n  %s\nwant\n  %s", s.fields, strings.Join(got, "\n  "), strings.Join(s.want, "\n  "))
		}
		if len(notes) > 0 {
			t.Errorf("%q: notes %q, want none", s.fields, notes)
		}
		prev = []byte(proto)
	}
}

// TestProtoNumbers_AnIntegerWidenedKeepsItsNumber: int32 → int64 and
// uint32 → uint64 (from Go int32 → int, uint16 → uint, …; also as the
// elements of a repeated field, the values of a map, or made optional on
// the way) are the same varint on the wire and keep their numbers, each
// with a note that old callers read larger values truncated; a narrowing,
// a change of sign and another type get new numbers, as before; a second
// run changes nothing. (Report j53c finding 7: Line.qty int32 → int64 was
// renumbered, and callers of the other version read 0 both ways in a
// rolling deploy.)
func TestProtoNumbers_AnIntegerWidenedKeepsItsNumber(t *testing.T) {
	before := "\tQty int32 `json:\"qty\"`\n\tCount uint16 `json:\"count\"`\n\tSizes []int32 `json:\"sizes\"`\n\tByKind map[string]uint32 `json:\"by_kind\"`\n" +
		"\tOpt *int32 `json:\"opt\"`\n\tNar int64 `json:\"nar\"`\n\tSign int32 `json:\"sign\"`\n\tUns uint32 `json:\"uns\"`\n\tStr int32 `json:\"str\"`"
	after := "\tQty int64 `json:\"qty\"`\n\tCount uint `json:\"count\"`\n\tSizes []int `json:\"sizes\"`\n\tByKind map[string]uint64 `json:\"by_kind\"`\n" +
		"\tOpt int64 `json:\"opt\"`\n\tNar int32 `json:\"nar\"`\n\tSign uint64 `json:\"sign\"`\n\tUns int64 `json:\"uns\"`\n\tStr string `json:\"str\"`"
	first, _ := genAcct(t, before, nil)
	if got, want := message(first, "OpenRequest"), []string{"int32 qty = 1;", "uint32 count = 2;", "repeated int32 sizes = 3;", "map<string, uint32> by_kind = 4;",
		"optional int32 opt = 5;", "int64 nar = 6;", "int32 sign = 7;", "uint32 uns = 8;", "int32 str = 9;"}; !slices.Equal(got, want) {
		t.Fatalf("OpenRequest is\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	proto, notes := genAcct(t, after, []byte(first))
	if got, want := message(proto, "OpenRequest"), []string{"int64 qty = 1;", "uint64 count = 2;", "repeated int64 sizes = 3;", "map<string, uint64> by_kind = 4;",
		"int64 opt = 5;", "int32 nar = 10;", "uint64 sign = 11;", "int64 uns = 12;", "string str = 13;",
		"reserved 6; // was int64 nar", "reserved 7; // was int32 sign", "reserved 8; // was uint32 uns", "reserved 9; // was int32 str"}; !slices.Equal(got, want) {
		t.Fatalf("widened, OpenRequest is\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	wantNotes := []string{
		"OpenRequest.qty widened in the .proto (int32 → int64) and keeps field 1: protobuf reads int32 and int64 alike, so callers built from the old .proto still read it, " +
			"but a value beyond the int32 range reaches them truncated by protobuf",
		"OpenRequest.count widened in the .proto (uint32 → uint64) and keeps field 2",
		"OpenRequest.sizes widened in the .proto (repeated int32 → repeated int64) and keeps field 3",
		"OpenRequest.by_kind widened in the .proto (map<string, uint32> → map<string, uint64>) and keeps field 4: protobuf reads uint32 and uint64 alike",
		"OpenRequest.opt widened in the .proto (optional int32 → int64) and keeps field 5",
		"OpenRequest.nar changed type in the .proto (int64 → int32), so it is field 10 now and 6 is reserved",
		"OpenRequest.sign changed type in the .proto (int32 → uint64), so it is field 11 now and 7 is reserved",
		"OpenRequest.uns changed type in the .proto (uint32 → int64), so it is field 12 now and 8 is reserved",
		"OpenRequest.str changed type in the .proto (int32 → string), so it is field 13 now and 9 is reserved",
	}
	if len(notes) != len(wantNotes) {
		t.Errorf("%d notes, want %d:\n%s", len(notes), len(wantNotes), strings.Join(notes, "\n"))
	}
	for _, w := range wantNotes {
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, w) }) {
			t.Errorf("no note contains %q; notes:\n%s", w, strings.Join(notes, "\n"))
		}
	}
	again, notes := genAcct(t, after, []byte(proto))
	if again != proto || len(notes) != 0 {
		t.Fatalf("a second run changes the .proto or notes %q:\n%s", notes, lineDiff([]byte(proto), []byte(again)))
	}

	// Narrowed back: a new number again (int64 → int32 would truncate in
	// the readers of the wider .proto's values), 1 reserved.
	back, notes := genAcct(t, "\tQty int32 `json:\"qty\"`", []byte(proto))
	if got := message(back, "OpenRequest"); len(got) == 0 || got[0] != "int32 qty = 14;" || !slices.Contains(got, "reserved 1; // was int64 qty") {
		t.Errorf("narrowed back, OpenRequest is %q, want qty = 14 and 1 reserved", got)
	}
	if !slices.ContainsFunc(notes, func(n string) bool {
		return strings.Contains(n, "OpenRequest.qty changed type in the .proto (int64 → int32), so it is field 14 now and 1 is reserved")
	}) {
		t.Errorf("narrowed back, notes %q", notes)
	}
}

// TestProtoNumbers_ARemovedFieldBackWidenedGetsItsNumberBack: a field
// removed as int32 that comes back as int64 is read alike by callers
// built before the removal: it gets its number back, with the widening
// note.
func TestProtoNumbers_ARemovedFieldBackWidenedGetsItsNumberBack(t *testing.T) {
	first, _ := genAcct(t, "\tOwner string `json:\"owner\"`\n\tQty int32 `json:\"qty\"`", nil)
	removed, _ := genAcct(t, "\tOwner string `json:\"owner\"`", []byte(first))
	if got, want := message(removed, "OpenRequest"), []string{"string owner = 1;", "reserved 2; // was int32 qty", `reserved "qty";`}; !slices.Equal(got, want) {
		t.Fatalf("OpenRequest without qty is %q, want %q", got, want)
	}
	back, notes := genAcct(t, "\tOwner string `json:\"owner\"`\n\tQty int64 `json:\"qty\"`", []byte(removed))
	if got, want := message(back, "OpenRequest"), []string{"string owner = 1;", "int64 qty = 2;"}; !slices.Equal(got, want) {
		t.Fatalf("OpenRequest with qty back as int64 is %q, want %q", got, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "OpenRequest.qty widened in the .proto (int32 → int64) and gets back field 2") {
		t.Errorf("notes %q, want the widening note", notes)
	}
}
