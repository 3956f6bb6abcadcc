package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate_RejectsAddressesTheInstanceStringCannotCarry(t *testing.T) {
	ok := Instance{ID: "u1", Name: "user", Endpoints: []string{"http://127.0.0.1:80"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"evil.com#x", "a?b=c", "user@evil.com", "a\x00b", "a\nb", "a\\b"} {
		bad := ok
		bad.Endpoints = []string{"http://" + addr + ":80"}
		err := bad.Validate()
		if !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("Validate(address %q) = %v; want ErrInvalidInstance", addr, err)
			continue
		}
		if _, err := EncodeRecord(bad); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("EncodeRecord(address %q) = %v", addr, err)
		}
	}
	for _, zone := range []string{"a\x01", "a\x7f"} {
		ctl := ok
		ctl.Zone = zone
		if err := ctl.Validate(); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("control character in zone %q: %v", zone, err)
		}
	}
	for _, good := range []string{"[::1]", "[fe80::1]", "my-host.example.com", "10.0.0.1"} {
		g := ok
		g.Endpoints = []string{"http://" + good + ":80"}
		if err := g.Validate(); err != nil {
			t.Errorf("Validate(address %q) = %v", good, err)
		}
	}
}

// A record with a megabyte of metadata was accepted and then read by every
// client of the service on every re-list.
func TestRecord_SizeAndMetadataLimits(t *testing.T) {
	base := Instance{ID: "u1", Name: "user", Endpoints: []string{"http://127.0.0.1:80"}}
	cases := map[string]func(*Instance){
		"1 MB metadata value": func(i *Instance) { i.Metadata = map[string]string{"k": strings.Repeat("x", 1<<20)} },
		"too many entries": func(i *Instance) {
			i.Metadata = map[string]string{}
			for n := range MaxMetadata + 1 {
				i.Metadata[strings.Repeat("k", n+1)] = "v"
			}
		},
		"long key":      func(i *Instance) { i.Metadata = map[string]string{strings.Repeat("k", MaxMetadataKey+1): "v"} },
		"too many tags": func(i *Instance) { i.Tags = make([]string, MaxTags+1) },
		"long tag":      func(i *Instance) { i.Tags = []string{strings.Repeat("t", MaxTagLen+1)} },
		"long ID":       func(i *Instance) { i.ID = strings.Repeat("i", MaxFieldLen+1) },
		"under the per-entry limits, over the record limit": func(i *Instance) {
			i.Metadata = map[string]string{}
			for n := range 20 {
				i.Metadata[strings.Repeat("k", n+1)] = strings.Repeat("v", MaxMetadataValue)
			}
		},
	}
	for name, mutate := range cases {
		in := base
		mutate(&in)
		if _, err := EncodeRecord(in); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("%s: EncodeRecord = %v; want ErrInvalidInstance", name, err)
		}
	}
	big := `{"v":1,"instance":{"id":"u1","name":"user","endpoints":["http://127.0.0.1:80"],"metadata":{"k":"` + strings.Repeat("x", MaxRecordSize) + `"}}}`
	if _, err := DecodeRecord([]byte(big)); !errors.Is(err, ErrInvalidInstance) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("DecodeRecord of %d bytes = %v; want refused by size", len(big), err)
	}
	full := base
	full.Metadata = map[string]string{"a": strings.Repeat("v", MaxMetadataValue)}
	if _, err := EncodeRecord(full); err != nil {
		t.Errorf("a record within every limit: %v", err)
	}
}

// FuzzIsEndpointURL: the allocation-free comparison checkCarriable uses
// agrees with building the endpoint.
func FuzzIsEndpointURL(f *testing.F) {
	for _, c := range []struct {
		ep, scheme, host string
		port             int
	}{
		{"http://h:1", "http", "h", 1}, {"https://h:1", "http", "h", 1}, {"grpc://h:1", "http", "h", 1}, {"http:xxh:1", "http", "h", 1},
		{"ht", "http", "h", 1}, {"http://g:1", "http", "h", 1}, {"http://h:2", "http", "h", 1},
		{"grpc://[::1]:80", "grpc", "::1", 80}, {"grpc://::1:80", "grpc", "::1", 80}, {"http://h:1/", "http", "h", 1},
	} {
		f.Add(c.ep, c.scheme, c.host, c.port)
	}
	f.Fuzz(func(t *testing.T, ep, scheme, host string, port int) {
		if port <= 0 || port > 65535 {
			return
		}
		if got, want := isEndpointURL(ep, scheme, host, port), ep == EndpointURL(scheme, host, port); got != want {
			t.Fatalf("isEndpointURL(%q, %q, %q, %d) = %v, want %v", ep, scheme, host, port, got, want)
		}
	})
}

func TestPlainHost(t *testing.T) {
	for ep, want := range map[string]bool{
		"http://10.0.0.1:80": true, "grpc://a-b.example:9": true, "http://[::1]:80": false,
		"http://Host:80": false, "http://h_1:80": false, "http://%41:80": false,
	} {
		if got := plainHost(ep); got != want {
			t.Errorf("plainHost(%q) = %v, want %v", ep, got, want)
		}
	}
}
