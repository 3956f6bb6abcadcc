package registry

import (
	"errors"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestInstance_StringRoundTripsEveryField(t *testing.T) {
	cases := []Instance{
		{ID: "user-127.0.0.1-8080", Name: "user", Endpoints: []string{"http://127.0.0.1:8080"}, Weight: 100},
		{ID: "u1", Name: "user", Endpoints: []string{"https://[::1]:9", "grpcs://[::1]:10"}, Version: "1.2.3", Zone: "eu-1", Weight: 7,
			Tags: []string{"a", "b"}, Metadata: map[string]string{"k": "v", "id": "not-the-id", "ep": "not-an-endpoint", "sp ace": "x&y=z"}},
		{ID: "g", Name: "grpc-only", Endpoints: []string{"grpc://10.0.0.1:9090"}, Weight: 1},
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
		if err != nil || u.Scheme+"://"+u.Host != in.Endpoints[0] {
			t.Errorf("url.Parse(%q) = %v, %v; want the first endpoint %q", s, u, err, in.Endpoints[0])
		}
	}
}

// A round-1 instance string (in a snapshot file, say) is the string of an
// instance with one HTTP endpoint, byte for byte.
func TestInstance_StringOfOneHTTPEndpointIsRound1Form(t *testing.T) {
	const round1 = "http://127.0.0.1:8080/?id=user-1&m.k=v&name=user&tag=a&version=1.0&weight=100&zone=a"
	in := Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://127.0.0.1:8080"}, Version: "1.0", Zone: "a",
		Tags: []string{"a"}, Metadata: map[string]string{"k": "v"}}
	if got := in.String(); got != round1 {
		t.Fatalf("String = %q, want %q", got, round1)
	}
	back, err := ParseInstance(round1)
	if err != nil {
		t.Fatal(err)
	}
	in.Weight = 100
	if !reflect.DeepEqual(back, in) {
		t.Fatalf("ParseInstance(round-1 string) = %#v", back)
	}
}

func TestInstance_EndpointPicksTheTransportsScheme(t *testing.T) {
	i := Instance{Endpoints: []string{"grpc://h:9", "https://h:8"}}
	if ep, ok := i.Endpoint("http", "https"); !ok || ep != "https://h:8" {
		t.Errorf(`Endpoint("http","https") = %q, %v`, ep, ok)
	}
	if ep, ok := i.Endpoint("grpc", "grpcs"); !ok || ep != "grpc://h:9" {
		t.Errorf(`Endpoint("grpc","grpcs") = %q, %v`, ep, ok)
	}
	if ep, ok := i.Endpoint("thrift"); ok {
		t.Errorf(`Endpoint("thrift") = %q, want none`, ep)
	}
	// The HTTP endpoint stands for the address even when it is not first.
	if got := i.HostPort(); got != "h:8" {
		t.Errorf("HostPort = %q, want the HTTP endpoint's h:8", got)
	}
	if got := (Instance{Endpoints: []string{"grpc://[::1]:9"}}).HostPort(); got != "[::1]:9" {
		t.Errorf("HostPort without HTTP = %q, want the first endpoint's", got)
	}
}

func TestInstance_IPv6HostPortIsBracketed(t *testing.T) {
	i := Instance{Endpoints: []string{EndpointURL("http", "::1", 80)}}
	if got := i.HostPort(); got != "[::1]:80" {
		t.Fatalf("HostPort = %q", got)
	}
	if got := i.Host(); got != "::1" {
		t.Fatalf("Host = %q", got)
	}
}

func TestParseInstance_AcceptsBareHostPort(t *testing.T) {
	got, err := ParseInstance("10.0.0.1:80")
	if err != nil || !reflect.DeepEqual(got.Endpoints, []string{"http://10.0.0.1:80"}) || got.ID != "10.0.0.1:80" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestParseInstance_RejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "nonsense", "http://host/?id=x", "http://h:99999/", "http://h:1/?weight=-3",
		"http://h:1/?weight=x", "http://h:1/?ep=grpc://h", "http://h:1/?ep=grpc://h:2/path", "1x://h:1/"} {
		if _, err := ParseInstance(s); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("ParseInstance(%q) err = %v, want ErrInvalidInstance", s, err)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	scheme, host, port, err := ParseEndpoint("grpcs://[fe80::1]:443")
	if err != nil || scheme != "grpcs" || host != "fe80::1" || port != 443 {
		t.Fatalf("ParseEndpoint = %q %q %d %v", scheme, host, port, err)
	}
	for _, bad := range []string{"", "h:1", "http://h", "http://h:0", "http://h:1/", "http://h:1?x", "http://u@h:1",
		"Http://h:1", "http://:1", "http://h:01", "http://[h]:1", "1http://h:1", "http://h,i:1",
		// A host that is no host name nor IP address: what a proxy's
		// configuration would take as syntax (report j49b: one ';' froze
		// every service at the nginx edge).
		"http://127.0.0.2;:80", `http://a"b:80`, "http://a{b}:80", "http://a$b:80", "http://a\\b:80", "http://ä:80",
		"http://[fe80::1;]:80"} {
		if _, _, _, err := ParseEndpoint(bad); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("ParseEndpoint(%q) err = %v, want ErrInvalidInstance", bad, err)
		}
	}
	for _, good := range []string{"http://user-1.svc.cluster.local:80", "http://My_Host:80", "http://10.1.2.3:80",
		"http://[fe80::1%25eth0]:80", "http://[::1]:80"} {
		if _, _, _, err := ParseEndpoint(good); err != nil {
			t.Errorf("ParseEndpoint(%q) = %v, want it accepted", good, err)
		}
	}
}

func TestRecord_RoundTripAndRejections(t *testing.T) {
	in := Instance{ID: "a", Name: "svc", Endpoints: []string{"http://127.0.0.1:1", "grpc://127.0.0.1:2"}, Metadata: map[string]string{"x": "y"}}
	b, err := EncodeRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeRecord(b)
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("DecodeRecord = %+v, %v", out, err)
	}
	for _, bad := range []string{"", "{", `{"v":2,"instance":{}}`, `{"v":1,"instance":{"id":"a","name":"svc","address":"h","port":0}}`,
		`{"v":1,"instance":{"id":"a","name":"svc","address":"h","port":1,"scheme":"ftp"}}`,
		`{"v":1,"instance":{"id":"a","name":"svc","endpoints":["http://h:1","http://h:2"]}}`, "\x00\xff"} {
		if _, err := DecodeRecord([]byte(bad)); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("DecodeRecord(%q) err = %v", bad, err)
		}
	}
	if _, err := EncodeRecord(Instance{Name: "Bad Name"}); !errors.Is(err, ErrInvalidInstance) {
		t.Errorf("EncodeRecord(invalid) err = %v", err)
	}
}

// A record keeps the round-1 fields for its HTTP endpoint, so a process
// still running round-1 code reads it during a rolling upgrade.
func TestRecord_KeepsRound1FieldsForTheHTTPEndpoint(t *testing.T) {
	b, err := EncodeRecord(Instance{ID: "a", Name: "svc", Endpoints: []string{"grpc://10.0.0.1:9", "https://10.0.0.1:8"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"v":1`, `"address":"10.0.0.1"`, `"port":8`, `"scheme":"https"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("record %s lacks %s", b, want)
		}
	}
}

// Records exactly as round 1 stored them still decode, to one HTTP(S)
// endpoint with every other field intact.
func TestDecodeRecord_Round1Samples(t *testing.T) {
	cases := map[string]Instance{
		"testdata/round1/etcd-record-https.json": {ID: "user-10.0.0.7-8443", Name: "user", Endpoints: []string{"https://10.0.0.7:8443"},
			Version: "1.4.2", Zone: "eu-1", Weight: 50, Tags: []string{"canary", "blue"},
			Metadata: map[string]string{"metrics": "http://10.0.0.7:9100/metrics"}},
		"testdata/round1/etcd-record-http.json": {ID: "order-__1-8080", Name: "order", Endpoints: []string{"http://[::1]:8080"}},
	}
	for path, want := range cases {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", path, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Instance{ID: "a", Name: "svc", Endpoints: []string{"http://h:1"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Instance){
		"upper name":   func(i *Instance) { i.Name = "Svc" },
		"empty id":     func(i *Instance) { i.ID = "" },
		"slash id":     func(i *Instance) { i.ID = "a/b" },
		"no endpoints": func(i *Instance) { i.Endpoints = nil },
		"no host":      func(i *Instance) { i.Endpoints = []string{"http://:1"} },
		"bracketed":    func(i *Instance) { i.Endpoints = []string{"http://[h]:1"} },
		"port zero":    func(i *Instance) { i.Endpoints = []string{"http://h:0"} },
		"port big":     func(i *Instance) { i.Endpoints = []string{"http://h:70000"} },
		"path":         func(i *Instance) { i.Endpoints = []string{"http://h:1/x"} },
		"two http":     func(i *Instance) { i.Endpoints = []string{"http://h:1", "http://h:2"} },
		"neg weight":   func(i *Instance) { i.Weight = -1 },
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

func TestWorst_RetryingOverUnregisteredOverTheRest(t *testing.T) {
	cases := []struct{ a, b, want State }{
		{StateRegistered, StateRetrying, StateRetrying},
		{StateRetrying, StateUnregistered, StateRetrying},
		{StateRegistered, StateUnregistered, StateUnregistered},
		{StateUnregistered, StateWithdrawn, StateUnregistered},
		{StateRegistered, StateWithdrawn, StateRegistered},
	}
	for _, c := range cases {
		if got := Worst(c.a, c.b); got != c.want {
			t.Errorf("Worst(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}
