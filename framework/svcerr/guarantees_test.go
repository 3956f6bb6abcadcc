package svcerr

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Every kind the package declares is Known (metrics keeps their codes as
// labels); a string a peer made up is not.
func TestKnown_EveryDeclaredKind(t *testing.T) {
	for _, k := range []Kind{InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, Unauthenticated,
		PermissionDenied, TooLarge, ResourceExhausted, Unavailable, DeadlineExceeded, Unimplemented, Internal} {
		if !k.Known() {
			t.Errorf("%q.Known() = false", k)
		}
	}
	if Kind("teapot").Known() {
		t.Error(`Kind("teapot").Known() = true`)
	}
}

// errors.Is matches on Kind and Code together: the same code under another
// kind is another error.
func TestIs_KindMustMatchToo(t *testing.T) {
	if errors.Is(New(Internal, "user_not_found", "user not found"), errNotFound) {
		t.Error("an internal error with the code user_not_found matched the not_found sentinel")
	}
}

// PassedOn is true only for an error rebuilt from a peer's answer, wrapped
// or not; the service's own *Error is not passed on.
func TestPassedOn_OnlyPeersErrors(t *testing.T) {
	peer := Peer(Unavailable, CodeOverloaded, "server overloaded", 0)
	if !PassedOn(peer) || !PassedOn(fmt.Errorf("stock: %w", peer)) || !peer.FromPeer() {
		t.Error("a peer's error is not PassedOn")
	}
	for _, err := range []error{ErrOverloaded, fmt.Errorf("x: %w", errNotFound), errors.New("plain")} {
		if PassedOn(err) {
			t.Errorf("PassedOn(%v) = true for the service's own error", err)
		}
	}
}

// Exhausted carries the delay the caller must wait (transports send it as
// Retry-After / RetryInfo) and is a ResourceExhausted error.
func TestExhausted_KeepsRetryAfter(t *testing.T) {
	e := Exhausted("rate_limited", "slow down", 1500*time.Millisecond)
	if e.Kind != ResourceExhausted || e.Code != "rate_limited" || e.RetryAfter != 1500*time.Millisecond {
		t.Fatalf("Exhausted = %+v", e)
	}
}

// With no message, the code is the text: in the logs (Error) and for the
// caller (Public).
func TestError_EmptyMessageReadsAsCode(t *testing.T) {
	e := New(NotFound, "user_not_found", "")
	if e.Error() != "user_not_found" {
		t.Errorf("Error() = %q", e.Error())
	}
	if got := Public(fmt.Errorf("get: %w", e)); got != "get: user_not_found" {
		t.Errorf("Public = %q", got)
	}
}
