package grpcclient

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// Error is a failed gRPC call to one instance: the status, the instance
// that answered (or failed to), and whether the call surely never reached
// it. It unwraps to the peer's business error (grpctransport.FromStatus),
// so errors.Is(err, user.ErrNotFound) and svcerr.KindOf hold on the
// caller's side, and to context.DeadlineExceeded or context.Canceled for
// those codes; status.Code(err) reads its code.
type Error struct {
	Status   *status.Status
	Instance string // host:port
	// ID is the instance's registry ID: the text reads "user-3
	// (127.0.0.1:33195): …", as the ejection lines name it (report j57b
	// F3).
	ID string
	// NotSent is true when the call failed before a connection to the
	// instance existed (it was in TRANSIENT_FAILURE, or the dial failed):
	// the instance cannot have acted on it.
	NotSent bool

	// dialErr is the dial error of a call that failed because the
	// instance refused the connection (ECONNREFUSED, seen by the
	// instance's dialer): Unwrap returns it, so errors.Is(err,
	// syscall.ECONNREFUSED) holds as for HTTP's refused attempts.
	dialErr error
}

func (e *Error) Error() string {
	who := e.Instance
	if e.ID != "" {
		who = e.ID + " (" + e.Instance + ")"
	}
	return who + ": " + e.Status.Code().String() + ": " + e.Status.Message()
}

// PrivateText implements svcerr.PrivateText: the instance this error's
// text names is for the calling service's logs, not for its callers.
func (e *Error) PrivateText() bool { return true }

// GRPCStatus makes status.Code and status.FromError work on e.
func (e *Error) GRPCStatus() *status.Status { return e.Status }

// Unwrap returns the rebuilt business error (which a DEADLINE_EXCEEDED
// status makes match context.DeadlineExceeded, as svcerr.Peer errors of
// that kind do), plus context.Canceled for a CANCELED status.
//
// An UNAVAILABLE that no Warren server sent rebuilds nothing: it is
// grpc-go's own report of a connection that failed (its text names the
// address: "dial tcp 127.0.0.1:…: connection refused"), or a plain
// server's. The call then ends as client.ErrUnreachable, as over HTTP
// after refused or reset connections: a service that returns it answers
// "service NAME unreachable", not the peer's address as if the peer had
// said it. When the instance refused the connection, it unwraps to the
// dial error (a *net.OpError): errors.Is(err, syscall.ECONNREFUSED)
// holds, and the retry policy spends neither a budget token nor, up to
// retry.MaxRefusedFree, an attempt on it, as over HTTP. No other
// UNAVAILABLE (a server's own, a connection lost mid-call, a dial that
// failed otherwise) matches it.
func (e *Error) Unwrap() []error {
	if e.Status.Code() == codes.Unavailable && !grpctransport.FromWarren(e.Status) {
		if e.dialErr != nil {
			return []error{e.dialErr}
		}
		return nil
	}
	errs := []error{grpctransport.FromStatus(e.Status)}
	if e.Status.Code() == codes.Canceled {
		errs = append(errs, context.Canceled)
	}
	return errs
}

// RetryClass implements retry.Classer:
//
//   - UNAVAILABLE is retried for any call when it surely was not sent (no
//     connection, a failed dial, a TLS handshake that failed — on a
//     certificate too: one instance with a bad certificate then costs its
//     callers nothing while ejection takes it out, and a client whose own
//     CA or certificate is wrong hears the reason from each attempt) or
//     when a Warren server said another attempt of the keyed call is in
//     progress; any other UNAVAILABLE — a
//     connection lost mid-call, or a handler's svcerr.Unavailable, which
//     may follow its effects — only for idempotent and keyed calls;
//   - RESOURCE_EXHAUSTED (an overload, or a quota with its RetryInfo, like
//     HTTP 503 and 429) was refused before any work: retried for any call.
//     A Warren handler's svcerr.TooLarge is RESOURCE_EXHAUSTED too, but an
//     answer, as HTTP's 413: the request is too large for every instance,
//     and the handler may have worked before saying so (retried, a POST's
//     handler ran 3 times: report j53c 3). Not retried (see final), nor
//     is grpc-go's own "message larger than max" (grpctransport.MessageTooLarge);
//   - another service's error the server passed on
//     (grpctransport.PassedOn) says nothing of whether the server acted:
//     retried only for idempotent and keyed calls, as HTTP does;
//   - DEADLINE_EXCEEDED (an attempt's own timeout, or the server's) may
//     have been acted on: idempotent calls only. The caller's own deadline
//     ends the retries anyway;
//   - UNIMPLEMENTED because the server has no such method or service
//     (grpctransport.UnknownMethod: Warren's unknown-method answer, or
//     grpc-go's own) reached no handler: retried on another instance for
//     any call, since during a rolling deploy an instance of the previous
//     release lacks the new methods (report j50b). A handler's own
//     UNIMPLEMENTED (svcerr.Unimplemented) is an answer;
//   - every other code describes the request, not the instance: not
//     retried.
func (e *Error) RetryClass() retry.Class {
	switch e.Status.Code() {
	case codes.Unavailable:
		if e.NotSent || e.inProgress() {
			return retry.Unprocessed
		}
		return retry.MaybeProcessed
	case codes.ResourceExhausted:
		if e.final() {
			return retry.Fatal
		}
		if grpctransport.PassedOn(e.Status) {
			return retry.MaybeProcessed
		}
		return retry.Unprocessed
	case codes.DeadlineExceeded:
		return retry.MaybeProcessed
	case codes.Unimplemented:
		if grpctransport.UnknownMethod(e.Status) {
			return retry.Unprocessed
		}
	}
	return retry.Fatal
}

// final reports whether a RESOURCE_EXHAUSTED is an answer about the
// request rather than a quota or an overload: Warren's ErrorInfo names a
// kind other than resource_exhausted (a quota) and the overload's. Of
// svcerr's kinds only too_large maps to RESOURCE_EXHAUSTED (HTTP 413);
// an unknown kind cannot be taken for a refusal before any work either.
// Without Warren's ErrorInfo (another language's server, a plain
// handler's status) it stays a quota, as documented, unless it is
// grpc-go's own message size limit (grpctransport.MessageTooLarge):
// another instance has the same limits, and when it is the caller's
// receive limit or the server's send limit that the response exceeded,
// the handler ran — as HTTP's ErrResponseTooLarge and 413, an answer,
// not retried (a POST's handler ran 3 times for one 5 MiB response).
func (e *Error) final() bool {
	if e.Status.Code() != codes.ResourceExhausted {
		return false
	}
	if !grpctransport.FromWarren(e.Status) {
		return grpctransport.MessageTooLarge(e.Status)
	}
	k := grpctransport.FromStatus(e.Status)
	return k.Kind != svcerr.ResourceExhausted && k.Code != svcerr.CodeOverloaded
}

// RetryDelay implements retry.Delayer: a quota's RESOURCE_EXHAUSTED is
// retried no sooner than its RetryInfo. An overload's RetryInfo is about
// the instance (see OverloadHold): the retry goes elsewhere at once. An
// in-progress answer is retried after a claim's TTL, by when the attempt
// holding the key has saved its result or lost its claim.
func (e *Error) RetryDelay() time.Duration {
	switch {
	case e.Status.Code() == codes.ResourceExhausted && !grpctransport.Overloaded(e.Status) && !e.final():
		return grpctransport.RetryAfter(e.Status)
	case e.inProgress():
		return idempotency.DefaultClaimTTL
	}
	return 0
}

// RetryPending implements retry.Pending: "another attempt of this keyed
// call holds its key" means an earlier attempt of this very call is still
// running, so the retry that learns its outcome does not spend an attempt.
func (e *Error) RetryPending() bool { return e.inProgress() }

// inProgress reports whether a Warren server answered
// idempotency.ErrInProgress.
func (e *Error) inProgress() bool {
	// FromStatus reads the code from Warren's ErrorInfo only.
	return e.Status.Code() == codes.Unavailable && grpctransport.FromStatus(e.Status).Code == idempotency.CodeInProgress &&
		!grpctransport.PassedOn(e.Status)
}

// OverloadHold implements balancer.Overloaded: an instance that refused a
// call as overloaded is left alone for half to all of its RetryInfo
// (capped at 5s; 1s without one), as with HTTP's 503.
func (e *Error) OverloadHold() time.Duration {
	if !grpctransport.Overloaded(e.Status) {
		return 0
	}
	d := min(grpctransport.RetryAfter(e.Status), 5*time.Second)
	if d <= 0 {
		d = time.Second
	}
	return d/2 + rand.N(d/2+1)
}

// Refused implements balancer.Refused: RESOURCE_EXHAUSTED (a quota or
// rate limit, refused before any work; an overload is OverloadHold's) is
// no sign of the instance's speed or health, unless the server passed it
// on from another service after its own work. A handler's too_large is
// an answer like any other (HTTP's 413 is not a refusal either). Nor is an unknown method
// (grpctransport.UnknownMethod): the instance answered at once without
// running anything, and P2C would otherwise favour it for its quick
// answers.
func (e *Error) Refused() bool {
	switch e.Status.Code() {
	case codes.ResourceExhausted:
		return !grpctransport.PassedOn(e.Status) && !grpctransport.Overloaded(e.Status) && !e.final()
	case codes.Unimplemented:
		return grpctransport.UnknownMethod(e.Status)
	}
	return false
}

// RetryFree implements retry.Freer: the server's own "no such method or
// service" ran nothing, so its retry spends no budget token.
func (e *Error) RetryFree() bool {
	return e.Status.Code() == codes.Unimplemented && grpctransport.UnknownMethod(e.Status)
}

// InstanceFailure implements client.InstanceFailure: transport failures,
// timeouts and server faults count against the instance; business
// answers, overloads, in-progress answers and the caller cancelling do not.
// UNIMPLEMENTED from a Warren handler (svcerr.Unimplemented: a method not
// written yet) does not either, nor does the server's own "no such method
// or service" (grpctransport.UnknownMethod, Warren's or grpc-go's): in a
// rolling deploy a healthy instance of the previous release answers it
// for each new method, and ejecting it took its other methods out of
// rotation (report j50b: it served 4 of ~250 calls instead of ~83). An
// UNIMPLEMENTED without Warren's ErrorInfo that is not grpc-go's text (a
// plain handler's status.Error) still counts.
func (e *Error) InstanceFailure() bool {
	switch e.Status.Code() {
	case codes.Unavailable:
		if grpctransport.PassedOn(e.Status) {
			return true // as HTTP counts a passed-on 503
		}
		code := grpctransport.FromStatus(e.Status).Code
		return code != svcerr.CodeOverloaded && code != idempotency.CodeInProgress
	case codes.Unimplemented:
		return !grpctransport.FromWarren(e.Status) && !grpctransport.UnknownMethod(e.Status)
	case codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss:
		return true
	}
	return false
}

// notSentMessage recognises grpc-go's status for a call that never had a
// connection: "connection error: desc = ..." is how it reports the failed
// attempt to establish one (refused, dial error, no server preface), which
// a call waiting for a connection fails with. A connection lost after the
// call was sent reads otherwise ("error reading from server", "transport
// is closing").
func notSentMessage(msg string) bool {
	return strings.HasPrefix(msg, "connection error:")
}
