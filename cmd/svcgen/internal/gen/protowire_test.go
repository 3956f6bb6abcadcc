package gen

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// compileMessage compiles a .proto gen wrote with protoc and returns the
// descriptor of its message name, for dynamicpb: what protoc-gen-go's
// generated code reads and writes, without generating it.
func compileMessage(t *testing.T, src, name string) protoreflect.MessageDescriptor {
	t.Helper()
	return compileProto(t, src, name).(protoreflect.MessageDescriptor)
}

// compileProto compiles a .proto gen wrote with protoc, with its source
// info (the comments), and returns the descriptor of name.
func compileProto(t *testing.T, src, name string) protoreflect.Descriptor {
	t.Helper()
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Fatalf("protoc not on PATH (make protoc): %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acct.proto"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	set := filepath.Join(dir, "acct.pb")
	if out, err := exec.Command(protoc, "-I", dir, "--include_imports", "--include_source_info", "-o", set, "acct.proto").CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s\n%s", err, out, src)
	}
	b, err := os.ReadFile(set)
	if err != nil {
		t.Fatal(err)
	}
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &fds); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&fds)
	if err != nil {
		t.Fatal(err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// TestProtoNumbers_AWidenedFieldIsReadOnTheWire: a request marshalled
// with the .proto of before a widening (int32, uint32, repeated int32,
// map of uint32) decodes with the .proto gen writes after it (int64,
// uint64, …) to the same values, negative and above 2^31 included, and
// back: what fits in the old type reads exactly; a value beyond it reads
// truncated, as gen's note says. A narrowed field, renumbered, is absent
// in the other version's reading rather than truncated. By protobuf-go
// itself (dynamicpb over protoc's descriptors). (Report j53c finding 7.)
func TestProtoNumbers_AWidenedFieldIsReadOnTheWire(t *testing.T) {
	before := "\tQty int32 `json:\"qty\"`\n\tCount uint32 `json:\"count\"`\n\tSizes []int32 `json:\"sizes\"`\n\tByKind map[string]uint32 `json:\"by_kind\"`\n\tNar int64 `json:\"nar\"`"
	after := "\tQty int64 `json:\"qty\"`\n\tCount uint64 `json:\"count\"`\n\tSizes []int64 `json:\"sizes\"`\n\tByKind map[string]uint64 `json:\"by_kind\"`\n\tNar int32 `json:\"nar\"`"
	oldSrc, _ := genAcct(t, before, nil)
	newSrc, _ := genAcct(t, after, []byte(oldSrc))
	const name = "acct.v1.OpenRequest"
	oldD, newD := compileMessage(t, oldSrc, name), compileMessage(t, newSrc, name)

	set := func(m *dynamicpb.Message, field string, v protoreflect.Value) {
		t.Helper()
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
		if fd == nil {
			t.Fatalf("%s has no field %s", m.Descriptor().FullName(), field)
		}
		m.Set(fd, v)
	}
	get := func(m *dynamicpb.Message, field string) protoreflect.Value {
		t.Helper()
		return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(field)))
	}
	recode := func(m *dynamicpb.Message, to protoreflect.MessageDescriptor) *dynamicpb.Message {
		t.Helper()
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out := dynamicpb.NewMessage(to)
		if err := proto.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	// An old caller's request, read by the new version.
	old := dynamicpb.NewMessage(oldD)
	set(old, "qty", protoreflect.ValueOfInt32(-5))
	set(old, "count", protoreflect.ValueOfUint32(4_000_000_000))
	sizes := old.NewField(oldD.Fields().ByName("sizes")).List()
	sizes.Append(protoreflect.ValueOfInt32(7))
	sizes.Append(protoreflect.ValueOfInt32(-2_000_000_000))
	set(old, "sizes", protoreflect.ValueOfList(sizes))
	byKind := old.NewField(oldD.Fields().ByName("by_kind")).Map()
	byKind.Set(protoreflect.ValueOfString("a").MapKey(), protoreflect.ValueOfUint32(3_000_000_000))
	set(old, "by_kind", protoreflect.ValueOfMap(byKind))
	set(old, "nar", protoreflect.ValueOfInt64(9))
	got := recode(old, newD)
	if q := get(got, "qty").Int(); q != -5 {
		t.Errorf("qty sent as int32 -5 reads as int64 %d", q)
	}
	if c := get(got, "count").Uint(); c != 4_000_000_000 {
		t.Errorf("count sent as uint32 4000000000 reads as uint64 %d", c)
	}
	if l := get(got, "sizes").List(); l.Len() != 2 || l.Get(0).Int() != 7 || l.Get(1).Int() != -2_000_000_000 {
		t.Errorf("sizes sent as [7 -2000000000] reads as %v", l)
	}
	if m := get(got, "by_kind").Map(); m.Len() != 1 || m.Get(protoreflect.ValueOfString("a").MapKey()).Uint() != 3_000_000_000 {
		t.Errorf("by_kind sent as {a: 3000000000} reads as %v", m)
	}
	if n := get(got, "nar").Int(); n != 0 {
		t.Errorf("nar, narrowed and renumbered, reads as %d from the old number, want absent", n)
	}

	// The new version's answer, read by an old caller: what fits reads
	// exactly, what does not is truncated by protobuf (gen's note).
	cur := dynamicpb.NewMessage(newD)
	set(cur, "qty", protoreflect.ValueOfInt64(-7))
	set(cur, "count", protoreflect.ValueOfUint64(1<<32+5))
	set(cur, "nar", protoreflect.ValueOfInt32(9))
	back := recode(cur, oldD)
	if q := get(back, "qty").Int(); q != -7 {
		t.Errorf("qty sent as int64 -7 reads as int32 %d", q)
	}
	if c := get(back, "count").Uint(); c != 5 {
		t.Errorf("count sent as uint64 2^32+5 reads as uint32 %d; gen's note says it is truncated (to 5)", c)
	}
	if n := get(back, "nar").Int(); n != 0 {
		t.Errorf("nar, narrowed and renumbered, reads as %d in the old .proto, want absent", n)
	}
}
