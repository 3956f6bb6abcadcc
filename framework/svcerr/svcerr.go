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
//
// The caller reads the error's text (Public). A failure of something the
// service depends on — another service, a database — is wrapped with Wrap,
// whose cause stays in the service's logs and errors.Is/As but is not sent:
//
//	return svcerr.Wrap(svcerr.Unavailable, "ledger_unavailable", "ledger unavailable, not charged", err)
package svcerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// Known reports whether k is one of the kinds above (a peer's answer may
// name any string).
func (k Kind) Known() bool {
	switch k {
	case InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, Unauthenticated, PermissionDenied,
		TooLarge, ResourceExhausted, Unavailable, DeadlineExceeded, Unimplemented, Internal:
		return true
	}
	return false
}

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

	// full is Error()'s text when it says more than Message, which is
	// what callers are sent: Message plus a cause made private by Wrap.
	full string
	// peer: rebuilt from another service's answer (Peer).
	peer bool
}

// Peer returns an *Error rebuilt from another service's answer, as Warren's
// clients make them: errors.Is matches the peer's sentinel as with New.
// What sets it apart is FromPeer: a service that returns it as it came (or
// wrapped with fmt.Errorf) answers its own caller with the same kind and
// code marked as passed on, so that caller does not take a peer's "not
// taken on" answer — overloaded, a 429 — for this service's own and replay
// a request whose effects may already have happened here.
func Peer(kind Kind, code, message string, retryAfter time.Duration) *Error {
	e := New(kind, code, message)
	e.RetryAfter = retryAfter
	e.peer = true
	return e
}

// FromPeer reports whether e was rebuilt from another service's answer
// (Peer).
func (e *Error) FromPeer() bool { return e.peer }

// PassedOn reports whether the first *Error in err's chain, the one a
// transport answers with, came from another service (Peer): the answer
// is then not about this service's own handling of the request.
func PassedOn(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.peer
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
// %w in format makes the argument the cause (several %w: all of them). The message, cause's text
// included, is what callers are sent (but for the private part of an
// *Error made by Wrap); use Wrap for a cause they should not read.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := New(kind, code, err.Error())
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		// Several %w: errors.Unwrap is nil for them, and errors.Is
		// lost every cause.
		e.Err = errors.Join(multi.Unwrap()...)
	} else {
		e.Err = errors.Unwrap(err)
	}
	var public []any
	for i, a := range args {
		if ae, ok := a.(error); ok && Public(ae) != ae.Error() {
			if public == nil {
				public = append([]any(nil), args...)
			}
			public[i] = publicText(Public(ae))
		}
	}
	if public != nil {
		e.full, e.Message = e.Message, fmt.Sprintf(wToV(format), public...)
	}
	return e
}

// Wrap returns an *Error of the given kind whose message is message and
// whose cause is err. The cause's text is part of Error() — the service's
// logs show it — and errors.Is/As reach it, but transports send callers
// message alone (Public): the details of a failed dependency, such as
// another service's address or a dial error, stay inside the service.
func Wrap(kind Kind, code, message string, err error) *Error {
	e := New(kind, code, message)
	e.Err = err
	if err != nil {
		e.full = e.Error() + ": " + err.Error()
	}
	return e
}

func (e *Error) Error() string {
	switch {
	case e.full != "":
		return e.full
	case e.Message == "":
		return e.Code
	}
	return e.Message
}

// Public is the text of err that a caller may read, which transports send
// as the error's message: the message of the first *Error in err's chain,
// after the text that wraps it (fmt.Errorf's "get %q: "), but
//
//   - without the cause of an *Error made by Wrap (it is for the logs);
//   - without the text of a layer whose type says its text is private
//     (PrivateText): a Warren client's error for another service's answer
//     reads "127.0.0.1:8081: 404 user_not_found: user not found" in the
//     logs, and "user not found" to the caller of a service that returned
//     it as it came.
//
// With no *Error in the chain it is err.Error().
func Public(err error) string {
	var first *Error
	if !errors.As(err, &first) {
		return err.Error()
	}
	prefix := ""
	for cur := err; ; {
		if e, ok := cur.(*Error); ok {
			return prefix + e.public()
		}
		u, ok := cur.(interface{ Unwrap() error })
		if !ok { // a tree (errors.Join, several %w) or an As method
			return prefix + first.public()
		}
		next := u.Unwrap()
		if next == nil {
			return prefix + first.public()
		}
		if p, ok := strings.CutSuffix(cur.Error(), next.Error()); ok && !isPrivate(cur) {
			prefix += p
		}
		cur = next
	}
}

// PrivateText is implemented by error types that wrap another error with
// text for the service's logs only, such as the address of the instance
// that answered: Public leaves their text out and keeps what they wrap.
type PrivateText interface {
	PrivateText() bool
}

func isPrivate(err error) bool {
	p, ok := err.(PrivateText)
	return ok && p.PrivateText()
}

// public is the message the caller reads.
func (e *Error) public() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// wToV turns format's %w verbs into %v (Sprintf has no %w), leaving %%
// and every other verb as they are.
func wToV(format string) string {
	b := []byte(format)
	for i := 0; i < len(b); i++ {
		if b[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(b) && strings.IndexByte("+-# 0123456789.[]*", b[j]) >= 0 {
			j++ // flags, width, precision, argument indexes
		}
		if j < len(b) && b[j] == 'w' {
			b[j] = 'v'
		}
		i = j // past the verb; "%%" is a verb too
	}
	return string(b)
}

// publicText formats as the public text of an error argument of Errorf.
type publicText string

func (p publicText) String() string { return string(p) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is match on Kind and Code, so an error rebuilt from a
// peer's response matches the sentinel the peer's service declared. A
// peer's DeadlineExceeded (its handler's deadline, or a proxy's 504)
// matches context.DeadlineExceeded as well, over every transport, as the
// caller's own expired deadline does.
func (e *Error) Is(target error) bool {
	if target == context.DeadlineExceeded {
		return e.peer && e.Kind == DeadlineExceeded
	}
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return e.Kind == t.Kind && e.Code == t.Code
}

// KindOf returns the Kind of the first *Error in err's chain; without
// one, DeadlineExceeded for a context deadline (what the transports
// answer for it; a fallback for a caller's own deadline was counted as
// "internal", a bug of the service called) and Internal for the rest.
func KindOf(err error) Kind {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Kind
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	return Internal
}
