package svcerr

import (
	"errors"
	"fmt"
	"testing"
)

var errNotFound = New(NotFound, "user_not_found", "user not found")

func TestIs_MatchesRebuiltPeerError(t *testing.T) {
	wrapped := fmt.Errorf("get %q: %w", "42", errNotFound)
	rebuilt := &Error{Kind: NotFound, Code: "user_not_found", Message: "get \"42\": user not found"}
	for _, err := range []error{wrapped, rebuilt, fmt.Errorf("call: %w", rebuilt)} {
		if !errors.Is(err, errNotFound) {
			t.Errorf("errors.Is(%v, errNotFound) = false", err)
		}
		if KindOf(err) != NotFound {
			t.Errorf("KindOf(%v) = %v", err, KindOf(err))
		}
	}
	if errors.Is(New(NotFound, "order_not_found", ""), errNotFound) {
		t.Error("different codes matched")
	}
}

func TestKindOf_PlainErrorIsInternal(t *testing.T) {
	if KindOf(errors.New("boom")) != Internal {
		t.Fatal("plain error not internal")
	}
}

func TestErrorf_KeepsCause(t *testing.T) {
	cause := errors.New("disk full")
	err := Errorf(Unavailable, "", "store: %w", cause)
	if !errors.Is(err, cause) || err.Code != "unavailable" || err.Error() != "store: disk full" {
		t.Fatalf("got %#v", err)
	}
}
