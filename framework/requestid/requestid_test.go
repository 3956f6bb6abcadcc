package requestid

import (
	"context"
	"strings"
	"testing"
)

func TestContextRoundTrip(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("empty context has an ID")
	}
	ctx := NewContext(context.Background(), "abc")
	if id, ok := FromContext(ctx); !ok || id != "abc" {
		t.Fatalf("FromContext = %q, %v", id, ok)
	}
	// An empty ID counts as none.
	if _, ok := FromContext(NewContext(context.Background(), "")); ok {
		t.Error("an empty ID counts as an ID")
	}
}

func TestValid_RejectsHostileIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123":                     true,
		New():                         true,
		"":                            false,
		"has space":                   false,
		"new\nline":                   false,
		strings.Repeat("x", MaxLen+1): false,
		// http.md documents the bound: printable ASCII, ≤ 128 bytes.
		strings.Repeat("x", 128): true,
		strings.Repeat("x", 129): false,
		"del\x7f":                false,
		"caf\u00e9":              false,
		"tab\there":              false,
	} {
		if got := Valid(id); got != want {
			t.Errorf("Valid(%q) = %v, want %v", id, got, want)
		}
	}
}
