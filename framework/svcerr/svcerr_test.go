package svcerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// peerErr stands for a client's error for another service's answer: its
// own text names the instance, and it unwraps to the peer's *Error.
type peerErr struct{ inner *Error }

func (p peerErr) Error() string {
	return "127.0.0.1:8081: 404 " + p.inner.Code + ": " + p.inner.Error()
}
func (p peerErr) Unwrap() error     { return p.inner }
func (p peerErr) PrivateText() bool { return true }

func TestWrap_CauseIsLoggedAndCheckableButNotPublic(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:8081: connect: connection refused")
	err := Wrap(Unavailable, "ledger_unavailable", "ledger unavailable, not charged", cause)
	if !errors.Is(err, cause) || KindOf(err) != Unavailable || err.Code != "ledger_unavailable" {
		t.Fatalf("Wrap = %#v", err)
	}
	if got, want := err.Error(), "ledger unavailable, not charged: "+cause.Error(); got != want {
		t.Errorf("Error() = %q, want %q (the logs keep the cause)", got, want)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{err, "ledger unavailable, not charged"},
		{fmt.Errorf("charge %q: %w", "c-1", err), `charge "c-1": ledger unavailable, not charged`},
		{Errorf(Unavailable, "", "checkout: %w", err), "checkout: ledger unavailable, not charged"},
		{errors.Join(errors.New("first"), err), "ledger unavailable, not charged"},
		// A peer's error passed on as it came: its message, not its instance.
		{fmt.Errorf("lookup: %w", peerErr{New(NotFound, "user_not_found", "user not found")}), "lookup: user not found"},
		{fmt.Errorf("get %q: %w", "42", errNotFound), `get "42": user not found`},
		{errors.New("no *Error at all"), "no *Error at all"},
	} {
		if got := Public(c.err); got != c.want {
			t.Errorf("Public(%q) = %q, want %q", c.err, got, c.want)
		}
	}
	// Errorf over a Wrap keeps the whole text for the logs.
	if e := Errorf(Unavailable, "", "checkout: %w", err); !strings.Contains(e.Error(), "connection refused") || !errors.Is(e, cause) {
		t.Errorf("Errorf over Wrap: Error() = %q, errors.Is(cause) = %v; want both to keep the cause", e.Error(), errors.Is(e, cause))
	}
	if Wrap(Internal, "", "m", nil).Error() != "m" {
		t.Error("Wrap with a nil cause added text")
	}
}

func TestErrorf_PublicMessageKeepsTheFormat(t *testing.T) {
	inner := Wrap(Unavailable, "", "ledger down", errors.New("10.0.0.7:9090 refused"))
	e := Errorf(Unavailable, "", "100%% sure, %d tries: %w (%s)", 3, inner, "eu")
	if e.Message != "100% sure, 3 tries: ledger down (eu)" {
		t.Fatalf("Message = %q", e.Message)
	}
	if e.Error() != "100% sure, 3 tries: ledger down: 10.0.0.7:9090 refused (eu)" || !errors.Is(e, inner) {
		t.Fatalf("Error() = %q, errors.Is(inner) = %v", e.Error(), errors.Is(e, inner))
	}
}

// Only a peer's DeadlineExceeded is context.DeadlineExceeded: a service's
// own error of that kind is its sentinel, and other kinds never are.
func TestIs_PeersDeadlineMatchesContextDeadline(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{Peer(DeadlineExceeded, "deadline_exceeded", "deadline exceeded", 0), true},
		{fmt.Errorf("stock: %w", Peer(DeadlineExceeded, "slow", "", 0)), true},
		{New(DeadlineExceeded, "deadline_exceeded", "deadline exceeded"), false},
		{Peer(Unavailable, "unavailable", "", 0), false},
	} {
		if got := errors.Is(tc.err, context.DeadlineExceeded); got != tc.want {
			t.Errorf("errors.Is(%v, context.DeadlineExceeded) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Errorf with several %w keeps every one of them as a cause, as
// fmt.Errorf does: errors.Unwrap of such an error is nil, and the
// causes were lost (errors.Is no longer found a peer's sentinel or a
// context error among them).
func TestErrorf_SeveralCausesAreAllKept(t *testing.T) {
	ledger := fmt.Errorf("ledger: %w", context.DeadlineExceeded)
	err := Errorf(Unavailable, "charge_failed", "charge: %w; refund: %w", ledger, errNotFound)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errNotFound) {
		t.Errorf("errors.Is lost a cause of %v", err)
	}
	if KindOf(err) != Unavailable || err.Code != "charge_failed" {
		t.Errorf("kind %s code %s; want unavailable charge_failed", KindOf(err), err.Code)
	}
	if got := Public(err); got != "charge: ledger: context deadline exceeded; refund: user not found" {
		t.Errorf("Public = %q", got)
	}
}
