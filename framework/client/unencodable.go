package client

import (
	"errors"

	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// Unencodable returns the error of a call whose request the caller's own
// code refused — a MarshalJSON over HTTP, a gRPC method's encoder (package
// grpcclient makes its encoder errors here) — with err; where names the
// call for the logs ("client user"). It matches ErrUnencodable, wraps err,
// and is not retried (nothing was sent: the same on every instance).
//
// Its kind and code are ErrUnencodable's (internal, request_not_encodable)
// unless err carries an *svcerr.Error of another kind: an encoder that
// refuses its input (svcerr.InvalidArgument, "invalid input") knows better
// than "internal", so KindOf, OutcomeCode, Public and a service passing
// the error on (its status: 400, not 500) read that error instead.
func Unencodable(where string, err error) error {
	var se *svcerr.Error
	own := errors.As(err, &se) && se.Kind != svcerr.Internal
	return &unencodableErr{where: where, err: err, own: own}
}

// unencodableErr is Unencodable's error.
type unencodableErr struct {
	where string
	err   error
	own   bool // err's *svcerr.Error speaks for the call
}

func (e *unencodableErr) Error() string {
	return e.where + ": " + ErrUnencodable.Message + ": " + e.err.Error()
}

// Unwrap orders the tree for errors.As, which takes the first *svcerr.Error
// it meets: the encoder's own kind first when it has one, else the
// sentinel, so a MarshalJSON's internal error does not hide
// request_not_encodable. errors.Is reaches both either way.
func (e *unencodableErr) Unwrap() []error {
	if e.own {
		return []error{e.err, ErrUnencodable}
	}
	return []error{ErrUnencodable, e.err}
}

func (e *unencodableErr) RetryClass() retry.Class { return retry.Fatal }
