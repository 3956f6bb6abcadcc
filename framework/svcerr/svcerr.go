// Package svcerr gives business errors a Kind that transports map to a
// status, so the service layer stays free of HTTP while callers on the other
// side of the wire still get a precise, checkable error.
//
// A service declares its errors once:
//
//	// ErrUserNotFound means no user has the ID; callers should not retry.
//	var ErrUserNotFound = svcerr.New(svcerr.NotFound, "user_not_found", "user not found")
//
// and returns them wrapped with context: fmt.Errorf("get %q: %w", id, ErrUserNotFound).
// errors.Is(err, ErrUserNotFound) then works in the service, in the HTTP
// server (which answers 404 {"error": "...", "code": "user_not_found"}), and
// in a Warren client on the other side, which rebuilds an *Error with the
// same Kind and Code.
package svcerr

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller should do about it.
type Kind string

// Kinds. Unavailable and DeadlineExceeded are the ones a client may retry
// on its own; ResourceExhausted it may retry after the time the server
// names; the others describe the request or the method, not the server's
// health.
const (
	InvalidArgument    Kind = "invalid_argument"
	NotFound           Kind = "not_found"
	AlreadyExists      Kind = "already_exists"
	FailedPrecondition Kind = "failed_precondition"
	Unauthenticated    Kind = "unauthenticated"
	PermissionDenied   Kind = "permission_denied"
	TooLarge           Kind = "too_large"
	// ResourceExhausted: the caller ran out of a quota or hit a rate limit
	// (HTTP 429); retry no sooner than the server's Retry-After.
	ResourceExhausted Kind = "resource_exhausted"
	Unavailable       Kind = "unavailable"
	DeadlineExceeded  Kind = "deadline_exceeded"
	// Unimplemented: the server has no implementation of the method (yet):
	// HTTP 501, gRPC UNIMPLEMENTED. The method stubs svcgen appends answer
	// it. Not retried, and not held against the instance: its other
	// methods work.
	Unimplemented Kind = "unimplemented"
	Internal      Kind = "internal"
)

// CodeOverloaded is the code of ErrOverloaded.
const CodeOverloaded = "overloaded"

// ErrOverloaded is what an instance answers when its load shedder refuses
// a request (package shed): the instance is full, not broken, and did not
// act on the request, so a caller should try another instance at once and
// leave this one alone for a moment. errors.Is(err, svcerr.ErrOverloaded)
// holds on the caller's side.
var ErrOverloaded = New(Unavailable, CodeOverloaded, "server overloaded, try another instance")

// Error is a business error with a Kind, a stable machine-readable Code and
// a human-readable Message.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Err is an optional cause, reachable with errors.Unwrap.
	Err error
	// RetryAfter, when positive, is how long the caller should wait
	// before trying again (a rate limit's next token); transports send it
	// (HTTP: Retry-After, in whole seconds rounded up) and Warren's client
	// waits at least that long before retrying a ResourceExhausted call.
	RetryAfter time.Duration
}

// Exhausted returns a ResourceExhausted error (HTTP 429) telling the
// caller to retry no sooner than after: what a rate limit or quota answers.
func Exhausted(code, message string, after time.Duration) *Error {
	e := New(ResourceExhausted, code, message)
	e.RetryAfter = after
	return e
}

// New returns an *Error. Code defaults to the Kind.
func New(kind Kind, code, message string) *Error {
	if code == "" {
		code = string(kind)
	}
	return &Error{Kind: kind, Code: code, Message: message}
}

// Errorf returns an *Error of the given kind whose message is formatted;
// %w in format makes the argument the cause.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := New(kind, code, err.Error())
	e.Err = errors.Unwrap(err)
	return e
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is match on Kind and Code, so an error rebuilt from a
// peer's response matches the sentinel the peer's service declared.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return e.Kind == t.Kind && e.Code == t.Code
}

// KindOf returns the Kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
