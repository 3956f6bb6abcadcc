package registry

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeRecord: any bytes under the etcd prefix either decode to a
// valid instance that survives a round trip, or fail with
// ErrInvalidInstance. Never a panic.
func FuzzDecodeRecord(f *testing.F) {
	good, _ := EncodeRecord(Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://[::1]:80", "grpc://[::1]:81"}, Zone: "a", Tags: []string{"x"}, Metadata: map[string]string{"k": "v"}})
	for _, s := range [][]byte{good, nil, []byte("{}"), []byte(`{"v":1}`), []byte(`{"v":1,"instance":{"id":"a","name":"b","address":"h","port":65536}}`), []byte(`{"v":1,"instance":{"id":"a","name":"b","endpoints":["grpc://h:1"]}}`), []byte("\xff\x00")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		inst, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidInstance) {
				t.Fatalf("error does not wrap ErrInvalidInstance: %v", err)
			}
			return
		}
		if err := inst.Validate(); err != nil {
			t.Fatalf("decoded an invalid instance: %v", err)
		}
		again, err := EncodeRecord(inst)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := DecodeRecord(again)
		if err != nil || !reflect.DeepEqual(back, inst) {
			t.Fatalf("round trip: %+v vs %+v (%v)", back, inst, err)
		}
	})
}

// FuzzParseInstance: instance strings from any backend parse or fail
// cleanly; a parsed instance renders to a string that parses back the same.
func FuzzParseInstance(f *testing.F) {
	for _, s := range []string{
		Instance{ID: "a", Name: "svc", Endpoints: []string{"http://127.0.0.1:8080", "grpc://127.0.0.1:9"}, Metadata: map[string]string{"m": "1"}}.String(),
		"grpc://h:1/?ep=http%3A%2F%2Fh%3A2&ep=x",
		"http://[::1]:80/?id=x&tag=a&tag=b&m.k=v", "10.0.0.1:80", "http://h:1/?weight=-1", "://", "http://%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inst, err := ParseInstance(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidInstance) {
				t.Fatalf("error does not wrap ErrInvalidInstance: %v", err)
			}
			return
		}
		if inst.Validate() != nil {
			return // parseable but not publishable (no name): fine for a reader
		}
		back, err := ParseInstance(inst.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", inst.String(), err)
		}
		if !reflect.DeepEqual(back.Endpoints, inst.Endpoints) || back.ID != inst.ID || back.Zone != inst.Zone {
			t.Fatalf("round trip changed %+v to %+v", inst, back)
		}
	})
}

// FuzzRecordString: RecordString, which skips building an Instance for
// the records it can, decides every record exactly as
// DecodeRecordString does: the same ID, name and string, or the same
// error.
func FuzzRecordString(f *testing.F) {
	good, _ := EncodeRecord(Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://10.0.0.1:80", "grpc://10.0.0.1:81"}, Version: "v1", Zone: "a", Weight: 5, Tags: []string{"y", "x"}, Metadata: map[string]string{"k": "v", "a b": "c&d", "é": "ü"}})
	v6, _ := EncodeRecord(Instance{ID: "user-2", Name: "user", Endpoints: []string{"http://[::1]:80"}})
	for _, s := range []string{
		string(good), string(v6), "{}", `{"v":1}`, `{"v":2,"instance":{"id":"a","name":"b","endpoints":["http://h:1"]}}`,
		`{"v":1,"instance":{"id":"a","name":"b","address":"h","port":1}}`,
		`{"v":1,"instance":{"id":"a","name":"b","endpoints":["http://h:1"],"metadata":{"k":"1","k":"2"}}}`,
		`{"v":1,"instance":{"id":"a","name":"b","endpoints":["http://h:1"],"metadata":{"":"1"}}}`,
		`{"v":1,"instance":{"id":"a","name":"b","endpoints":["http://h:1","http://h:2"]}}`,
		`{"v":1,"instance":{"id":"a b","name":"b","endpoints":["http://h:1"]}}`,
		`{"v":1,"instance":{"id":"a","name":"B","endpoints":["http://h:1"]}}`,
		`{"v":1,"instance":{"id":"a","name":"b","endpoints":["http://H:1"],"weight":-1}}`,
		`{"v":1,"instance":{"id":"a","name":"b","endpoints":["http://h:01"]}}`,
		`{"v":1,"instance":{"id":"a","name":"b","endpoints":["http://h:1"],"zone":"z\u0001"}}`,
		`{"v":1,"instance":{"id":"a","name":"b","endpoints":["http://h:1"],"tags":["a","a"],"metadata":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, name, s, err := RecordString(b)
		inst, want, wantErr := DecodeRecordString(b)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("RecordString error %v, DecodeRecordString %v, for %q", err, wantErr, b)
		}
		if id != inst.ID || name != inst.Name || s != want {
			t.Fatalf("RecordString %q %q %q, DecodeRecordString %q %q %q, for %q", id, name, s, inst.ID, inst.Name, want, b)
		}
	})
}

func TestRecordString_TakesTheFastPathForWhatRegistrarsWrite(t *testing.T) {
	for _, inst := range []Instance{
		{ID: "user-1", Name: "user", Endpoints: []string{"http://10.0.0.1:80"}},
		{ID: "user-1", Name: "user", Endpoints: []string{"grpc://host-a.example:81", "http://host-a.example:80"}, Version: "v1", Zone: "a", Weight: 5, Tags: []string{"y", "x"}, Metadata: map[string]string{"k": "v", "a b": "c d=e", "é": "ü", "z": ""}},
	} {
		b, err := EncodeRecord(inst)
		if err != nil {
			t.Fatal(err)
		}
		var f flatRecord
		_, _, s, ok := recordStringFast(b, &f)
		if !ok {
			t.Fatalf("fast path refused %s", b)
		}
		if s != inst.String() {
			t.Fatalf("fast path rendered %q, String %q", s, inst.String())
		}
	}
}

// RecordString scans the record in place; what it returns must not point
// into it: an instancer's etcd client may reuse the buffer.
func TestRecordString_KeepsNothingOfTheRecordBuffer(t *testing.T) {
	for _, inst := range []Instance{
		{ID: "user-1", Name: "user", Endpoints: []string{"http://10.0.0.1:80"}, Weight: 250},
		{ID: "user-1", Name: "user", Endpoints: []string{"grpc://host-a.example:81", "http://host-a.example:80"}, Zone: "a", Metadata: map[string]string{"id": "x", "name": "y"}},
		{ID: "%25+u", Name: "user", Endpoints: []string{"http://10.0.0.1:80"}}, // escaped in the string
	} {
		b, err := EncodeRecord(inst)
		if err != nil {
			t.Fatal(err)
		}
		id, name, s, err := RecordString(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 'x'
		}
		if id != inst.ID || name != inst.Name || s != inst.String() {
			t.Fatalf("after the record's buffer changed: %q %q %q, want %q %q %q", id, name, s, inst.ID, inst.Name, inst.String())
		}
	}
}
