//go:build tools

// Package genprotopin is never built: it keeps go mod tidy from dropping
// Warren's requirement on the google.golang.org/genproto monolith at a
// version after googleapis/api and googleapis/rpc moved to modules of
// their own (2023). go-kit v0.13.0 still requires the monolith of 2021,
// which holds both, and a user's module that requires go-kit and imports
// Warren's packages then found googleapis/api/httpbody and
// googleapis/rpc/status in two modules: go mod tidy failed with
// "ambiguous import" (report j51a F7). Warren's requirement, which a
// user's module inherits, selects the split monolith instead. Keep it at
// the version Warren's own graph selects (go list -m google.golang.org/genproto),
// and never at one that asks for a newer grpc than go.mod's.
package genprotopin

import _ "google.golang.org/genproto/googleapis/type/date"
