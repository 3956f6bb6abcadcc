// Package grpctransport holds Warren's gRPC conventions, shared by the
// server (transport/grpcserver), the client (grpcclient) and generated
// code, as httptransport does for HTTP:
//
//   - business errors cross the wire as gRPC statuses: a *svcerr.Error's
//     Kind picks the status code and its Code and Kind travel in a
//     google.rpc.ErrorInfo detail (domain "warren"), so the caller rebuilds
//     the same *svcerr.Error and errors.Is(err, user.ErrNotFound) holds on
//     its side (Status, FromStatus);
//   - an overload refusal is RESOURCE_EXHAUSTED with reason "overloaded"
//     and a google.rpc.RetryInfo, the gRPC twin of HTTP's 503 +
//     Retry-After, and unwraps to svcerr.ErrOverloaded;
//   - server interceptors: request IDs from and into metadata, panics to
//     INTERNAL, errors to statuses, in-flight counting (ServerInterceptors).
//
// See docs/grpc.md.
package grpctransport
