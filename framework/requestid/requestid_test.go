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
}

func TestValid_RejectsHostileIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123":                     true,
		New():                         true,
		"":                            false,
		"has space":                   false,
		"new\nline":                   false,
		strings.Repeat("x", MaxLen+1): false,
	} {
		if got := Valid(id); got != want {
			t.Errorf("Valid(%q) = %v, want %v", id, got, want)
		}
	}
}
