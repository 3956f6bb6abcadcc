// Package svcgentest holds the checks svcgen's generated tests call.
//
// RoundTrip is the one grpc_gen_test.go runs for every type a gRPC
// service's messages carry: it fills each exported field of the Go type
// with a value that is not zero, converts it to its protobuf message and
// back through the conversions svcgen generated (over the wire format
// too), and fails naming every field that did not come back. A field
// added to a request or response type after the last `svcgen gen` is not
// in grpc_gen.go nor in the .proto, so over gRPC it never reaches the
// other side (HTTP, whose JSON takes every field, carries it): the build
// passes, and this is the test that says "run svcgen gen".
package svcgentest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

var timeType = reflect.TypeFor[time.Time]()

// RoundTrip fills every exported field of a T (recursively: nested
// structs, pointers, slices, maps, times) with a value that is not zero,
// converts it with to, marshals and unmarshals the message, converts it
// back with from, and reports with t.Errorf each field whose value did
// not come back (or that protobuf cannot hold), by its path in T
// ("ChargeRequest.Item.Price"). Fields the JSON encoding skips (json:"-")
// and unexported fields are left zero, as svcgen does not carry them.
func RoundTrip[T any, P proto.Message](t testing.TB, to func(T) P, from func(P) T) {
	t.Helper()
	var in T
	name := reflect.TypeFor[T]().Name()
	f := filler{path: name, seen: map[reflect.Type]bool{}}
	f.fill(reflect.ValueOf(&in).Elem(), name)
	for _, p := range f.problems {
		t.Errorf("%s; run `svcgen gen` (it says what gRPC can carry)", p)
	}
	out, err := convert(in, to, from)
	if err != nil {
		t.Errorf("%s: the round trip through protobuf failed: %v; run `svcgen gen`", name, err)
		return
	}
	var lost []string
	compare(reflect.ValueOf(in), reflect.ValueOf(out), name, &lost)
	for _, l := range lost {
		t.Errorf("%s; the type changed since grpc_gen.go and the .proto were generated, so over gRPC the value never reaches the other side: run `svcgen gen`", l)
	}
}

// convert runs the conversions and the wire between them; a conversion
// that panics (what svcgen's do for a value protobuf cannot hold) is an
// error.
func convert[T any, P proto.Message](in T, to func(T) P, from func(P) T) (out T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	m := to(in)
	b, err := proto.Marshal(m)
	if err != nil {
		return out, fmt.Errorf("marshal: %w", err)
	}
	wire := m.ProtoReflect().Type().New().Interface().(P)
	if err := proto.Unmarshal(b, wire); err != nil {
		return out, fmt.Errorf("unmarshal: %w", err)
	}
	return from(wire), nil
}

// filler sets values that are not zero, each distinct from the last, so
// two fields swapped on the way show too.
type filler struct {
	path     string
	n        int
	seen     map[reflect.Type]bool // struct types being filled: a recursive type stops
	problems []string
}

func (f *filler) next() int { f.n++; return f.n%100 + 1 } // fits every integer type, int8 included

func (f *filler) fill(v reflect.Value, path string) {
	t := v.Type()
	if t == timeType {
		n := f.next()
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, n%60, n*1000, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d", f.next()))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t == reflect.TypeFor[time.Duration]() {
			v.SetInt(int64(time.Duration(f.next())*time.Second + time.Millisecond))
			return
		}
		v.SetInt(int64(f.next()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.next()))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.next()) + 0.5)
	case reflect.Pointer:
		if f.recursive(t.Elem()) {
			return // a recursive type: nil ends it
		}
		p := reflect.New(t.Elem())
		f.fill(p.Elem(), path)
		v.Set(p)
	case reflect.Slice:
		if f.recursive(t.Elem()) {
			return // empty ends it (protobuf has no nil element)
		}
		s := reflect.MakeSlice(t, 2, 2)
		for i := range 2 {
			f.fill(s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			f.problems = append(f.problems, fmt.Sprintf("%s: type %s: gRPC map keys are strings", path, t))
			return
		}
		if f.recursive(t.Elem()) {
			return
		}
		m := reflect.MakeMapWithSize(t, 1)
		k := reflect.New(t.Key()).Elem()
		k.SetString(fmt.Sprintf("k%d", f.next()))
		e := reflect.New(t.Elem()).Elem()
		f.fill(e, path+"["+k.String()+"]")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		f.seen[t] = true
		defer delete(f.seen, t)
		for i := range t.NumField() {
			sf := t.Field(i)
			if !carried(sf) {
				continue
			}
			f.fill(v.Field(i), path+"."+sf.Name)
		}
	default:
		f.problems = append(f.problems, fmt.Sprintf("%s: type %s cannot travel over gRPC", path, t))
	}
}

// recursive says whether t (or what it points to) is a struct type being
// filled already, which a recursive type's field reaches again.
func (f *filler) recursive(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return f.seen[t]
}

// carried says whether svcgen maps the field to the message: exported and
// not `json:"-"` (`json:"-,"` names a field "-").
func carried(sf reflect.StructField) bool {
	if !sf.IsExported() {
		return false
	}
	return sf.Tag.Get("json") != "-"
}

// compare lists each leaf of want that got does not hold.
func compare(want, got reflect.Value, path string, lost *[]string) {
	t := want.Type()
	report := func() {
		*lost = append(*lost, fmt.Sprintf("%s: sent %s, came back %s", path, show(want), show(got)))
	}
	if t == timeType {
		if !want.Interface().(time.Time).Equal(got.Interface().(time.Time)) {
			report()
		}
		return
	}
	switch want.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if sf := t.Field(i); carried(sf) {
				compare(want.Field(i), got.Field(i), path+"."+sf.Name, lost)
			}
		}
	case reflect.Pointer:
		if want.IsNil() || got.IsNil() {
			if want.IsNil() != got.IsNil() {
				report()
			}
			return
		}
		compare(want.Elem(), got.Elem(), path, lost)
	case reflect.Slice:
		if want.Len() != got.Len() {
			report()
			return
		}
		for i := range want.Len() {
			compare(want.Index(i), got.Index(i), fmt.Sprintf("%s[%d]", path, i), lost)
		}
	case reflect.Map:
		if want.Len() != got.Len() {
			report()
			return
		}
		for _, k := range want.MapKeys() {
			g := got.MapIndex(k)
			if !g.IsValid() {
				report()
				return
			}
			compare(want.MapIndex(k), g, path+"["+k.String()+"]", lost)
		}
	default:
		if want.CanInterface() && got.CanInterface() && !reflect.DeepEqual(want.Interface(), got.Interface()) {
			report()
		}
	}
}

func show(v reflect.Value) string {
	switch {
	case v.Kind() == reflect.Pointer && v.IsNil():
		return "nil"
	case (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0:
		return "empty"
	case v.Type() == timeType:
		return v.Interface().(time.Time).Format(time.RFC3339Nano)
	case v.CanInterface():
		return fmt.Sprintf("%#v", v.Interface())
	}
	return v.Type().String()
}
