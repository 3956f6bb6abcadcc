// Package httptransport holds Warren's HTTP conventions on top of go-kit's
// transport/http: JSON codecs with a body limit, one error encoder that maps
// errors to a status and a JSON body {"error": "...", "code": "..."}, a
// router that answers unknown routes and wrong methods in the same JSON, and
// the handler middleware every server gets (panic recovery, request ID,
// access log).
//
// Generated transports use NewServer and DecodeJSON; hand-written ones can
// use the same pieces one by one.
package httptransport
