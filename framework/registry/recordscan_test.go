package registry

import (
	"encoding/json"
	"net"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// FuzzScanRecord: whatever the fast scanner accepts, it decodes exactly
// as encoding/json does.
func FuzzScanRecord(f *testing.F) {
	good, _ := EncodeRecord(Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://[::1]:80", "grpc://[::1]:81"}, Zone: "a", Tags: []string{"x"}, Metadata: map[string]string{"k": "v", "é": "ü"}})
	for _, s := range []string{
		string(good), "{}", `{"v":1}`, ` { "v" : 1 , "instance" : { "id" : "a" , "tags" : [ ] , "metadata" : { } } } `,
		`{"v":1,"instance":{"id":"a","name":"b","address":"h","port":65536,"weight":-3}}`,
		`{"v":1,"instance":{"metadata":{"k":"a","k":"b"}}}`, `{"v":1,"instance":{"id":"a","id":"b"}}`,
		`{"v":1.0}`, `{"v":01}`, `{"v":1e0}`, `{"v":-0}`, `{"v":1234567890}`, `{"V":1}`, `{"v":1,"instance":{"ID":"x"}}`,
		`{"v":1,"instance":{"id":"a\u0041"}}`, `{"v":1,"instance":{"metadata":null,"tags":null}}`, "{\"v\":1,\"instance\":{\"id\":\"\xff\"}}",
		`{"v":1}x`, `{"v":1,}`, `{"v":1,"instance":{"endpoints":["a",]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := scanRecord(b)
		if !ok {
			return
		}
		var slow record
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("scanner accepted what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("scanner %+v, encoding/json %+v, for %q", fast, slow, b)
		}
	})
}

func TestScanRecord_ReadsWhatEncodeRecordWrites(t *testing.T) {
	inst := Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://10.0.0.1:80", "grpc://10.0.0.1:81"}, Version: "v2", Zone: "a", Weight: 7, Tags: []string{"x", "y"}, Metadata: map[string]string{"k": "v"}}
	b, err := EncodeRecord(inst)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := scanRecord(b)
	if !ok {
		t.Fatalf("the fast path refused a record EncodeRecord wrote: %s", b)
	}
	var want record
	if err := json.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("scanner %+v, encoding/json %+v (%v)", r, want, err)
	}
}

// urlValuesString is String as it was, over url.Values: the reference
// the hand-built String must match byte for byte.
func urlValuesString(i Instance) string {
	q := url.Values{}
	q.Set(qID, i.ID)
	q.Set(qName, i.Name)
	if i.Version != "" {
		q.Set(qVersion, i.Version)
	}
	if i.Zone != "" {
		q.Set(qZone, i.Zone)
	}
	q.Set(qWeight, strconv.Itoa(i.EffectiveWeight()))
	tags := append([]string(nil), i.Tags...)
	sort.Strings(tags)
	for _, t := range tags {
		q.Add(qTag, t)
	}
	for k, v := range i.Metadata {
		q.Set(qMeta+k, v)
	}
	base := ""
	if len(i.Endpoints) > 0 {
		base = i.Endpoints[0]
		for _, ep := range i.Endpoints[1:] {
			q.Add(qEndpoint, ep)
		}
	}
	return base + "/?" + q.Encode()
}

func FuzzString_SameAsURLValues(f *testing.F) {
	f.Add("user-1", "user", "v1", "z", 3, "b,a,a b", "k=v;é=&x;", "http://h:1,grpc://h:2")
	f.Add("", "", "", "", 0, "", "", "")
	f.Add("a&b=c", "n%", "+", "?", -1, ",", "=;=", "x")
	f.Fuzz(func(t *testing.T, id, name, version, zone string, weight int, tags, meta, eps string) {
		inst := fuzzInstance(id, name, version, zone, weight, tags, meta, eps)
		if got, want := inst.String(), urlValuesString(inst); got != want {
			t.Fatalf("String() = %q, url.Values gives %q", got, want)
		}
	})
}

// FuzzParseInstance_QueryAsURLValues: the hand-read query gives what
// url.Values gave.
func FuzzParseInstance_QueryAsURLValues(f *testing.F) {
	for _, s := range []string{
		"http://h:1/?id=a&id=b&name=n&tag=x&tag=y&m.k=1&m.k=2&ep=grpc%3A%2F%2Fh%3A2&weight=3&zone=z&version=v",
		"http://h:1/?id=a;b&name=%zz&m.=x&&=&tag=&weight=", "http://h:1/?m.a+b=c+d&id=%41",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseInstance(s)
		u, uerr := url.Parse(s)
		if err != nil || uerr != nil || !strings.Contains(s, "://") {
			return
		}
		q := u.Query()
		if got.ID != q.Get(qID) && !(q.Get(qID) == "" && got.ID == u.Host) || got.Name != q.Get(qName) ||
			got.Version != q.Get(qVersion) || got.Zone != q.Get(qZone) || !reflect.DeepEqual(got.Tags, q[qTag]) {
			t.Fatalf("ParseInstance(%q) = %+v; url.Values %v", s, got, q)
		}
		for k, v := range q {
			if strings.HasPrefix(k, qMeta) && got.Metadata[k[len(qMeta):]] != v[0] {
				t.Fatalf("ParseInstance(%q) metadata %v; url.Values %v", s, got.Metadata, q)
			}
		}
	})
}

func FuzzCanonicalHostPort(f *testing.F) {
	f.Add("[::1]:80", "::1", 80)
	f.Add("h:8080", "h", 8080)
	f.Add("h:08080", "h", 8080)
	f.Add("::1:80", "::1", 80)
	f.Fuzz(func(t *testing.T, hp, host string, port int) {
		if port <= 0 || port > 65535 {
			return
		}
		want := hp == net.JoinHostPort(host, strconv.Itoa(port))
		if got := canonicalHostPort(hp, host, port); got != want {
			t.Fatalf("canonicalHostPort(%q, %q, %d) = %v, want %v", hp, host, port, got, want)
		}
	})
}

// FuzzValidInstance_ReadsBackFromString: whatever Validate accepts,
// ParseInstance(String()) gives back field for field — the claim that
// lets checkCarriable read back only the first endpoint — and when that
// endpoint's host is plain, the read-back checkCarriable skips would have
// passed (the skip changes no verdict).
func FuzzValidInstance_ReadsBackFromString(f *testing.F) {
	f.Add("user-1", "user", "v1", "z", 3, "b,a", "k=v;é=&x;", "http://h:1,grpc://h:2")
	f.Add("a&b=c", "n", "+", "?#", 0, ",", "=;=", "http://[::1]:80")
	f.Add("i%d", "n", "%zz", "a b", 1, "&", "m.x=1", "https://h:65535")
	f.Add("u-1", "u", "", "", 0, "", "", "http://10.0.0.1:8080,grpc://a-b.c:2")
	f.Fuzz(func(t *testing.T, id, name, version, zone string, weight int, tags, meta, eps string) {
		inst := fuzzInstance(id, name, version, zone, weight, tags, meta, eps)
		if inst.Validate() != nil {
			return
		}
		if plainHost(inst.Endpoints[0]) {
			if err := inst.readsBack(inst.String()); err != nil {
				t.Fatalf("plain host %q skipped a read-back that fails: %v", inst.Endpoints[0], err)
			}
		}
		got, err := ParseInstance(inst.String())
		if err != nil {
			t.Fatalf("valid %+v does not parse back: %v", inst, err)
		}
		want := inst
		want.Weight = inst.EffectiveWeight()
		if len(want.Tags) > 0 {
			want.Tags = slices.Sorted(slices.Values(want.Tags))
		} else {
			want.Tags = nil
		}
		if len(want.Metadata) == 0 {
			want.Metadata = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back %+v, want %+v", got, want)
		}
	})
}

// fuzzInstance builds an instance from a fuzzer's strings: tags and
// endpoints comma-separated, metadata as k=v;k=v.
func fuzzInstance(id, name, version, zone string, weight int, tags, meta, eps string) Instance {
	inst := Instance{ID: id, Name: name, Version: version, Zone: zone, Weight: weight}
	if tags != "" {
		inst.Tags = strings.Split(tags, ",")
	}
	if eps != "" {
		inst.Endpoints = strings.Split(eps, ",")
	}
	for _, kv := range strings.Split(meta, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if inst.Metadata == nil {
				inst.Metadata = map[string]string{}
			}
			inst.Metadata[k] = v
		}
	}
	return inst
}
