package requestid

import (
	"context"
	"testing"
)

func TestFromContext_ReturnsIDStoredByNewContext(t *testing.T) {
	ctx := NewContext(context.Background(), "abc-123")
	if id, ok := FromContext(ctx); !ok || id != "abc-123" {
		t.Fatalf("FromContext = %q, %v; want abc-123, true", id, ok)
	}
}

func TestFromContext_ReportsAbsentForMissingOrEmptyID(t *testing.T) {
	for name, ctx := range map[string]context.Context{
		"missing": context.Background(),
		"empty":   NewContext(context.Background(), ""),
	} {
		if id, ok := FromContext(ctx); ok || id != "" {
			t.Errorf("%s: FromContext = %q, %v; want \"\", false", name, id, ok)
		}
	}
}
