package registry

import (
	"errors"
	"net/url"
	"reflect"
	"testing"
)

func TestInstance_StringRoundTripsEveryField(t *testing.T) {
	cases := []Instance{
		{ID: "user-127.0.0.1-8080", Name: "user", Address: "127.0.0.1", Port: 8080, Weight: 100},
		{ID: "u1", Name: "user", Address: "::1", Port: 9, Scheme: "https", Version: "1.2.3", Zone: "eu-1", Weight: 7,
			Tags: []string{"a", "b"}, Metadata: map[string]string{"k": "v", "id": "not-the-id", "sp ace": "x&y=z"}},
	}
	for _, in := range cases {
		s := in.String()
		got, err := ParseInstance(s)
		if err != nil {
			t.Fatalf("ParseInstance(%q): %v", s, err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Errorf("round trip of %q:\n got %#v\nwant %#v", s, got, in)
		}
		u, err := url.Parse(s)
		if err != nil || u.Host != in.HostPort() {
			t.Errorf("url.Parse(%q).Host = %q, %v; want %q", s, u.Host, err, in.HostPort())
		}
	}
}

func TestInstance_IPv6HostPortIsBracketed(t *testing.T) {
	i := Instance{Address: "::1", Port: 80}
	if got := i.HostPort(); got != "[::1]:80" {
		t.Fatalf("HostPort = %q", got)
	}
}

func TestParseInstance_AcceptsBareHostPort(t *testing.T) {
	got, err := ParseInstance("10.0.0.1:80")
	if err != nil || got.Address != "10.0.0.1" || got.Port != 80 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestParseInstance_RejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "nonsense", "http://host/?id=x", "http://h:99999/", "http://h:1/?weight=-3", "http://h:1/?weight=x"} {
		if _, err := ParseInstance(s); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("ParseInstance(%q) err = %v, want ErrInvalidInstance", s, err)
		}
	}
}

func TestRecord_RoundTripAndRejections(t *testing.T) {
	in := Instance{ID: "a", Name: "svc", Address: "127.0.0.1", Port: 1, Metadata: map[string]string{"x": "y"}}
	b, err := EncodeRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeRecord(b)
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("DecodeRecord = %+v, %v", out, err)
	}
	for _, bad := range []string{"", "{", `{"v":2,"instance":{}}`, `{"v":1,"instance":{"id":"a","name":"svc","address":"h","port":0}}`, "\x00\xff"} {
		if _, err := DecodeRecord([]byte(bad)); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("DecodeRecord(%q) err = %v", bad, err)
		}
	}
	if _, err := EncodeRecord(Instance{Name: "Bad Name"}); !errors.Is(err, ErrInvalidInstance) {
		t.Errorf("EncodeRecord(invalid) err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Instance{ID: "a", Name: "svc", Address: "h", Port: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Instance){
		"upper name": func(i *Instance) { i.Name = "Svc" },
		"empty id":   func(i *Instance) { i.ID = "" },
		"slash id":   func(i *Instance) { i.ID = "a/b" },
		"no address": func(i *Instance) { i.Address = "" },
		"bracketed":  func(i *Instance) { i.Address = "[::1]" },
		"port zero":  func(i *Instance) { i.Port = 0 },
		"port big":   func(i *Instance) { i.Port = 70000 },
		"scheme":     func(i *Instance) { i.Scheme = "ftp" },
		"neg weight": func(i *Instance) { i.Weight = -1 },
	}
	for name, mut := range bad {
		i := ok
		mut(&i)
		if err := i.Validate(); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestDefaultID_IsStableAndKeySafe(t *testing.T) {
	if got := DefaultID("user", "::1", 80); got != "user-__1-80" {
		t.Fatalf("DefaultID = %q", got)
	}
	if DefaultID("a", "h", 1) != DefaultID("a", "h", 1) {
		t.Fatal("not stable")
	}
}
