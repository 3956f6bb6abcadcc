package client

import (
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// Unwrap rebuilds the peer's business error: a 404 with code
// "user_not_found" unwraps to a *svcerr.Error of kind NotFound and that
// code, so errors.Is(err, user.ErrNotFound) holds on the caller's side just
// as it did in the user service, and svcerr.KindOf(err) tells the kind.
// It is marked as a peer's (svcerr.Peer) and keeps the Retry-After: a
// service that returns it as it came answers with the same kind, code and
// Retry-After, marked as passed on.
func (e *Error) Unwrap() error {
	code := e.Code
	kind := httptransport.KindForStatus(e.Status)
	if code == "" {
		code = string(kind)
	}
	return svcerr.Peer(kind, code, e.Message, e.RetryAfter)
}

// PrivateText implements svcerr.PrivateText: the instance and status this
// error's text adds are for the calling service's logs. A service that
// returns the error as it came sends its caller the peer's message only
// (svcerr.Public).
func (e *Error) PrivateText() bool { return true }
