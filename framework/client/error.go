package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/warren-mesh/warren/framework/retry"
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
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d", e.Instance, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// RetryClass implements retry.Classer. A 503 means the server did not take
// the request on (overloaded or draining before shutdown), so any request
// may go elsewhere; 502 and 504 come from a proxy or a deadline that may
// have cut the work off half way, so only idempotent requests are retried.
// Everything else describes the request, not the instance.
func (e *Error) RetryClass() retry.Class {
	switch e.Status {
	case http.StatusServiceUnavailable:
		return retry.Unprocessed
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return retry.MaybeProcessed
	}
	return retry.Fatal
}

// errorBody is the JSON shape framework/httptransport writes.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func decodeError(status int, body []byte, instance string) *Error {
	e := &Error{Status: status, Instance: instance}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && (eb.Error != "" || eb.Code != "") {
		e.Code, e.Message = eb.Code, eb.Error
		return e
	}
	e.Message = http.StatusText(status)
	return e
}

// ErrResponseTooLarge is returned when a response body exceeds
// MaxResponseBytes.
var ErrResponseTooLarge = errors.New("client: response body too large")

// decodeErr marks a response the client could not decode: the instance
// answered, so it does not count against the instance's health, and the
// same bytes would come back from a retry.
type decodeErr struct{ err error }

func (e *decodeErr) Error() string           { return "client: decode response: " + e.err.Error() }
func (e *decodeErr) Unwrap() error           { return e.err }
func (e *decodeErr) RetryClass() retry.Class { return retry.Fatal }
