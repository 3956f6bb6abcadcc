package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// Error is an error response from the called service: a non-2xx status
// with, from a Warren server, the body {"error": "...", "code": "..."}.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the machine-readable code ("user_not_found"); empty when the
	// body was not Warren's JSON (a proxy's HTML page, say).
	Code string
	// Message is the human-readable "error" field, or the status text.
	Message string
	// Instance is the host:port that answered.
	Instance string
	// ID is the registry ID of the instance that answered, when known:
	// the text then reads "user-3 (127.0.0.1:33195): …", so a log line
	// names the instance as the page and the ejection lines do (report
	// j57b F3).
	ID string
	// RetryAfter is the answer's Retry-After, if it had one.
	RetryAfter time.Duration
	// PassedOn: the instance answered with another service's error, which
	// it returned as it came (httptransport.ErrorBody.PassedOn). Its
	// status says nothing of whether the instance acted on the request.
	PassedOn bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.ID != "" {
		fmt.Fprintf(&b, "%s (%s): %d", e.ID, e.Instance, e.Status)
	} else {
		fmt.Fprintf(&b, "%s: %d", e.Instance, e.Status)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// RetryClass implements retry.Classer. A 503 that says the request was
// not taken on (notTakenOn) and a 429 (a rate limit or quota, refused
// before any work) may go elsewhere for any request, a 429 no sooner than
// its Retry-After (RetryDelay). Any other 503 is an answer the handler
// gave (svcerr.Unavailable: its own dependency failed, say) after it may
// have acted, and 502 and 504 come from a proxy or a deadline that may
// have cut the work off half way: only idempotent and keyed requests are
// retried then, as after a 503 or 429 the instance passed on from another
// service (PassedOn). A Warren router's own 404 route_not_found and 405
// method_not_allowed (Unrouted) ran no handler: retried elsewhere for any
// request, since during a rolling deploy an instance of the previous
// release lacks the new routes. So is a Warren server's own 408
// body_timeout (bodyNotReceived): the body did not reach the instance in
// time, so no method ran. Everything else describes the request, not the
// instance.
func (e *Error) RetryClass() retry.Class {
	if e.Unrouted() || e.bodyNotReceived() {
		return retry.Unprocessed
	}
	switch e.Status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		if e.PassedOn || (e.Status == http.StatusServiceUnavailable && !e.notTakenOn()) {
			return retry.MaybeProcessed
		}
		return retry.Unprocessed
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return retry.MaybeProcessed
	}
	return retry.Fatal
}

// notTakenOn reports whether a 503 says no handler acted on the request:
// a load shedder's refusal, a keyed call's "in progress" (the earlier
// attempt acts, once), or a 503 that is not a Warren service's answer (no
// code: a proxy with no upstream to send it to). Any other 503 is a
// handler's svcerr.Unavailable, which may follow its effects.
func (e *Error) notTakenOn() bool {
	return e.Code == "" || e.Overloaded() || e.inProgress()
}

// RetryDelay implements retry.Delayer: a 429 is retried no sooner than
// its Retry-After. A 503's Retry-After is about the instance, not the call
// (see OverloadHold): the retry goes to another instance at once.
func (e *Error) RetryDelay() time.Duration {
	switch {
	case e.Status == http.StatusTooManyRequests:
		return e.RetryAfter
	case e.inProgress():
		// Another attempt holds the key: its result, or the end of its
		// claim if its instance stopped mid-call, comes within a claim's TTL.
		return idempotency.DefaultClaimTTL
	}
	return 0
}

// RetryPending implements retry.Pending: "another attempt of this keyed
// call holds its key" means an earlier attempt of this very call is still
// running, so the retry that learns its outcome does not spend an attempt.
func (e *Error) RetryPending() bool { return e.inProgress() }

// inProgress reports whether the answer is "another attempt of this keyed
// call holds its key" (idempotency.ErrInProgress).
func (e *Error) inProgress() bool {
	return e.Status == http.StatusServiceUnavailable && e.Code == idempotency.CodeInProgress && !e.PassedOn
}

// Overloaded reports whether the answer is a load shedder's "overloaded,
// try another instance" (503 with code "overloaded").
func (e *Error) Overloaded() bool {
	return e.Status == http.StatusServiceUnavailable && e.Code == svcerr.CodeOverloaded && !e.PassedOn
}

// Refused implements balancer.Refused: a 429 (a rate limit or quota,
// refused before any work) is no sign of the instance's speed or health.
// One the instance passed on from another service followed its own work.
// Nor is an Unrouted answer: the instance answered at once without
// running anything, and P2C would otherwise favour it for that.
func (e *Error) Refused() bool {
	return e.Status == http.StatusTooManyRequests && !e.PassedOn || e.Unrouted()
}

// The codes of Warren's router (httptransport.Router) for a request no
// route matches.
const (
	codeRouteNotFound    = "route_not_found"
	codeMethodNotAllowed = "method_not_allowed"
)

// Unrouted reports whether the answer is a Warren server's router saying
// it has no such route (404 route_not_found) or not for this method (405
// method_not_allowed): no handler ran, and another instance — one of the
// new release, during a rolling deploy — may have the route. It is
// retried elsewhere for any method and counts against no instance. A 404
// a handler answered (a resource not found) is not this, nor is another
// service's answer passed on.
func (e *Error) Unrouted() bool {
	if e.PassedOn {
		return false
	}
	return e.Status == http.StatusNotFound && e.Code == codeRouteNotFound ||
		e.Status == http.StatusMethodNotAllowed && e.Code == codeMethodNotAllowed
}

// bodyNotReceived reports whether the answer is a Warren server's own 408
// body_timeout (httptransport.CodeBodyTimeout): the instance gave up
// reading the request body, and a Warren handler decodes the whole body
// before the method runs, so the method did not run. Another instance,
// over another path, may get the body in time. A 408 without that code
// (a proxy's, or a handler's own) says nothing of what ran, and one
// passed on from another service is that service's.
func (e *Error) bodyNotReceived() bool {
	return e.Status == http.StatusRequestTimeout && e.Code == httptransport.CodeBodyTimeout && !e.PassedOn
}

// RetryFree implements retry.Freer: an unrouted answer's retry spends no
// budget token (no handler ran).
func (e *Error) RetryFree() bool { return e.Unrouted() }

// maxOverloadHold bounds how long one overload answer keeps an instance
// out of picks: long enough for the instance's queue to drain, short
// enough that its capacity is not wasted when every caller backs off. A
// shedder lengthens its Retry-After (1s to 5s) as its overload deepens.
const maxOverloadHold = 5 * time.Second

// OverloadHold implements balancer.Overloaded: an overloaded instance is
// left alone for a random time between half and all of its Retry-After
// (capped at 5s; 1s when absent), so callers that were refused together do
// not return together.
func (e *Error) OverloadHold() time.Duration {
	if !e.Overloaded() {
		return 0
	}
	d := min(e.RetryAfter, maxOverloadHold)
	if d <= 0 {
		d = time.Second
	}
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}

// errorBody is the JSON shape framework/httptransport writes.
type errorBody struct {
	Error    string `json:"error"`
	Code     string `json:"code"`
	PassedOn bool   `json:"passed_on"`
}

func decodeError(status int, header http.Header, body []byte, instance, id string) *Error {
	e := &Error{Status: status, Instance: instance, ID: id, RetryAfter: parseRetryAfter(header.Get("Retry-After"), time.Now())}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && (eb.Error != "" || eb.Code != "") {
		e.Code, e.Message, e.PassedOn = eb.Code, eb.Error, eb.PassedOn
		return e
	}
	e.Message = http.StatusText(status)
	return e
}

// ErrResponseTooLarge is returned when a response body exceeds
// MaxResponseBytes.
var ErrResponseTooLarge = errors.New("client: response body too large")

// The codes of ErrUnencodable and ErrUndecodable.
const (
	CodeUnencodable = "request_not_encodable"
	CodeUndecodable = "response_not_decodable"
)

// ErrUnencodable matches (errors.Is) a call whose request the client could
// not encode (or, over gRPC, the method's encoder refused): no instance
// was involved. ErrUndecodable matches one whose answer the client could
// not decode: the instance answered. Neither is retried or counts against
// an instance, and the encoder's or decoder's error stays wrapped. Their
// kind is svcerr.Internal (a service passing them on answers 500 with
// their code), not ErrUnreachable's — but for an encoder's error of a
// kind of its own (Unencodable) —; the outcome code of a named call
// (OutcomeCode) is theirs. grpcclient's errors of the same names are these.
var (
	ErrUnencodable = svcerr.New(svcerr.Internal, CodeUnencodable, "request cannot be encoded")
	ErrUndecodable = svcerr.New(svcerr.Internal, CodeUndecodable, "response cannot be decoded")
)

// decodeErr marks a response the client could not decode: the instance
// answered, so it does not count against the instance's health, and the
// same bytes would come back from a retry. With request set it is a
// request the client could not build (the same on every instance).
// It matches ErrUndecodable, or ErrUnencodable with request set.
type decodeErr struct {
	err     error
	request bool
}

func (e *decodeErr) Error() string {
	if e.request {
		return "client: build request: " + e.err.Error()
	}
	return "client: decode response: " + e.err.Error()
}

// Unwrap gives the sentinel first, so svcerr.KindOf, Public and
// OutcomeCode read it rather than an *svcerr.Error the cause may hold (a
// type's UnmarshalJSON returning one), and the text with the instance's
// address stays in the logs.
func (e *decodeErr) Unwrap() []error {
	if e.request {
		return []error{ErrUnencodable, e.err}
	}
	return []error{ErrUndecodable, e.err}
}
func (e *decodeErr) RetryClass() retry.Class { return retry.Fatal }
