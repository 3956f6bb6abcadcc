package httptransport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	kithttp "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// PassedOn says the error is another service's answer that this one
	// returned (svcerr.PassedOn): its kind and code are that service's,
	// and they say nothing of whether this service acted on the request —
	// a caller must not replay a request on a passed-on 503 or 429 as it
	// may on this service's own.
	PassedOn bool `json:"passed_on,omitempty"`
}

// StatusClientClosedRequest is the (nginx) status recorded when the caller
// went away before the answer was ready; the caller never sees it.
const StatusClientClosedRequest = 499

var kindStatus = map[svcerr.Kind]int{
	svcerr.InvalidArgument:    http.StatusBadRequest,
	svcerr.NotFound:           http.StatusNotFound,
	svcerr.AlreadyExists:      http.StatusConflict,
	svcerr.FailedPrecondition: http.StatusUnprocessableEntity,
	svcerr.Unauthenticated:    http.StatusUnauthorized,
	svcerr.PermissionDenied:   http.StatusForbidden,
	svcerr.TooLarge:           http.StatusRequestEntityTooLarge,
	svcerr.ResourceExhausted:  http.StatusTooManyRequests,
	svcerr.Unavailable:        http.StatusServiceUnavailable,
	svcerr.DeadlineExceeded:   http.StatusGatewayTimeout,
	svcerr.Unimplemented:      http.StatusNotImplemented,
	svcerr.Internal:           http.StatusInternalServerError,
}

// KindForStatus is the inverse mapping clients use to rebuild a peer's
// error; statuses without a kind of their own map to Internal, but for
// 405 (InvalidArgument), 502 (Unavailable) and 408 (Unavailable).
//
// A 408 is a request body the server did not receive in time (a Warren
// server's body_timeout, a proxy's client_body_timeout): a transport
// failure of that call, as a connection cut or an attempt's own timeout
// is (client.ErrUnreachable), not a bug of the service (Internal, 500
// when passed on) nor the caller's deadline (DeadlineExceeded, which
// matches context.DeadlineExceeded and cuts a client's concurrency
// limit).
func KindForStatus(status int) svcerr.Kind {
	for k, s := range kindStatus {
		if s == status && k != svcerr.Internal {
			return k
		}
	}
	switch status {
	case http.StatusMethodNotAllowed:
		return svcerr.InvalidArgument
	case http.StatusBadGateway, http.StatusRequestTimeout:
		return svcerr.Unavailable
	}
	return svcerr.Internal
}

// Classify returns the status and body for err. Errors that are not
// *svcerr.Error and carry no status of their own are internal: their text
// is logged, never sent, so a caller cannot read implementation details.
func Classify(err error) (int, ErrorBody) {
	var se *svcerr.Error
	var tooBig *http.MaxBytesError
	var sc kithttp.StatusCoder
	switch {
	case errors.As(err, &se):
		st, ok := kindStatus[se.Kind]
		if !ok {
			st = http.StatusInternalServerError
		}
		msg := svcerr.Public(err) // a cause wrapped with svcerr.Wrap stays in the logs
		if se.Kind == svcerr.Internal {
			msg = "internal error"
		}
		return st, ErrorBody{Error: msg, Code: se.Code, PassedOn: se.FromPeer()}
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, ErrorBody{Error: "request body exceeds " + itoa(tooBig.Limit) + " bytes", Code: "body_too_large"}
	case errors.Is(err, ErrBodyTimeout):
		code := CodeBodyTimeoutInHandler // read by the method: it may have acted
		if errors.As(err, new(bodyNotDecoded)) {
			code = CodeBodyTimeout
		}
		return http.StatusRequestTimeout, ErrorBody{Error: ErrBodyTimeout.Error(), Code: code}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, ErrorBody{Error: "deadline exceeded", Code: string(svcerr.DeadlineExceeded)}
	case errors.Is(err, context.Canceled):
		return StatusClientClosedRequest, ErrorBody{Error: "request canceled", Code: "canceled"}
	case errors.As(err, &sc):
		st := sc.StatusCode()
		return st, ErrorBody{Error: http.StatusText(st), Code: string(KindForStatus(st))}
	}
	return http.StatusInternalServerError, ErrorBody{Error: "internal error", Code: string(svcerr.Internal)}
}

// WriteError writes err as a JSON error response.
func WriteError(w http.ResponseWriter, err error) {
	st, body := Classify(err)
	setRetryAfter(w, err)
	writeJSONError(w, st, body)
}

// setRetryAfter sends an *svcerr.Error's RetryAfter as Retry-After, in
// whole seconds rounded up (a client must not come back early).
func setRetryAfter(w http.ResponseWriter, err error) {
	var se *svcerr.Error
	if errors.As(err, &se) && se.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((se.RetryAfter+time.Second-1)/time.Second), 10))
	}
}

func writeJSONError(w http.ResponseWriter, status int, body ErrorBody) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body) // the status is already out; nothing useful to do on failure
}

// ErrorEncoder returns a go-kit ErrorEncoder that writes Classify's answer
// and logs server-side failures (5xx) with the request ID, so the text a
// caller is not shown is still findable.
func ErrorEncoder(logger log.Logger) kithttp.ErrorEncoder {
	return func(ctx context.Context, err error, w http.ResponseWriter) {
		st, body := Classify(err)
		if st >= 500 {
			id, _ := requestid.FromContext(ctx)
			level.Error(logger).Log("msg", "request failed", "status", st, "request_id", id, "err", err)
		}
		setRetryAfter(w, err)
		writeJSONError(w, st, body)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
