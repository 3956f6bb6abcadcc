package registry

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The limits are the numbers security.md's table documents.
func TestLimits_AreTheDocumentedValues(t *testing.T) {
	for name, c := range map[string][2]int{
		"MaxRecordSize":    {MaxRecordSize, 16 << 10},
		"MaxMetadata":      {MaxMetadata, 64},
		"MaxMetadataKey":   {MaxMetadataKey, 128},
		"MaxMetadataValue": {MaxMetadataValue, 1024},
		"MaxTags":          {MaxTags, 64},
		"MaxTagLen":        {MaxTagLen, 128},
		"MaxFieldLen":      {MaxFieldLen, 253},
		"MaxEndpoints":     {MaxEndpoints, 16},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %d; security.md documents %d", name, c[0], c[1])
		}
	}
}

// Each limit admits exactly its value and refuses one more: the check is
// ">", not ">=" and not a bound a byte or an entry off.
func TestLimits_AdmitTheLimitRefuseOneMore(t *testing.T) {
	base := Instance{ID: "u1", Name: "user", Endpoints: []string{"http://127.0.0.1:80"}}
	endpoints := func(n int) []string {
		eps := make([]string, n)
		for k := range eps {
			eps[k] = fmt.Sprintf("s%d://127.0.0.1:%d", k, 1000+k)
		}
		return eps
	}
	longEndpoint := func(n int) string { // http://<name of n-len("http://")-len(":80") bytes>:80
		name := strings.Repeat("a", n-len("http://")-len(":80"))
		return "http://" + name + ":80"
	}
	for _, c := range []struct {
		name     string
		atLimit  func(*Instance)
		overIt   func(*Instance)
		overText string
	}{
		{"endpoints", func(i *Instance) { i.Endpoints = endpoints(MaxEndpoints) }, func(i *Instance) { i.Endpoints = endpoints(MaxEndpoints + 1) }, "endpoints, at most"},
		{"endpoint length", func(i *Instance) { i.Endpoints = []string{longEndpoint(MaxFieldLen)} }, func(i *Instance) { i.Endpoints = []string{longEndpoint(MaxFieldLen + 1)} }, "endpoint of"},
		{"metadata value", func(i *Instance) { i.Metadata = map[string]string{"k": strings.Repeat("v", MaxMetadataValue)} },
			func(i *Instance) { i.Metadata = map[string]string{"k": strings.Repeat("v", MaxMetadataValue+1)} }, "at most"},
	} {
		in := base
		c.atLimit(&in)
		if err := in.Validate(); err != nil {
			t.Errorf("%s at the limit: %v", c.name, err)
		}
		in = base
		c.overIt(&in)
		if err := in.Validate(); !errors.Is(err, ErrInvalidInstance) || !strings.Contains(err.Error(), c.overText) {
			t.Errorf("%s one over the limit: %v; want ErrInvalidInstance saying %q", c.name, err, c.overText)
		}
	}
}

// sizedRecord returns an instance whose encoded record is exactly n
// bytes (n a little over MaxRecordSize at most), padded with metadata
// values each within MaxMetadataValue.
func sizedRecord(t *testing.T, n int) Instance {
	t.Helper()
	in := Instance{ID: "u1", Name: "user", Endpoints: []string{"http://127.0.0.1:80"}, Metadata: map[string]string{}}
	for k := range MaxMetadata {
		key := fmt.Sprintf("k%02d", k)
		in.Metadata[key] = ""
		b, err := EncodeRecord(in) // under n: the last step left room
		if err != nil {
			t.Fatal(err)
		}
		need := n - len(b)
		if need <= MaxMetadataValue {
			in.Metadata[key] = strings.Repeat("v", need)
			return in
		}
		// Leave room for the next key's own bytes.
		in.Metadata[key] = strings.Repeat("v", min(MaxMetadataValue, need-50))
	}
	t.Fatalf("cannot pad a record to %d bytes", n)
	return in
}

// A record of exactly MaxRecordSize bytes is written and read; one byte
// more is refused both ways.
func TestRecord_SizeLimitIsExact(t *testing.T) {
	in := sizedRecord(t, MaxRecordSize)
	b, err := EncodeRecord(in)
	if err != nil || len(b) != MaxRecordSize {
		t.Fatalf("record of %d bytes: %v; want %d bytes accepted", len(b), err, MaxRecordSize)
	}
	if _, err := DecodeRecord(b); err != nil {
		t.Fatalf("DecodeRecord at the limit: %v", err)
	}
	// One byte more: JSON whitespace, still a valid record but for its size.
	if _, err := DecodeRecord(append(b, ' ')); !errors.Is(err, ErrInvalidInstance) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("DecodeRecord of %d bytes: %v; want refused by size", len(b)+1, err)
	}
	over := sizedRecord(t, MaxRecordSize+1)
	if b, err := EncodeRecord(over); !errors.Is(err, ErrInvalidInstance) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("EncodeRecord of a %d-byte record: %d bytes, %v; want refused by size", MaxRecordSize+1, len(b), err)
	}
}
