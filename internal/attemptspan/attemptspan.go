// Package attemptspan marks the client span of an attempt the retry
// policy called off because of its hedged pair, for the HTTP
// (framework/tracing) and gRPC (framework/grpcclient) attempt spans alike,
// so the two transports name and judge it the same way.
package attemptspan

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-mesh/warren/framework/retry"
)

// Values of warren.attempt.outcome.
var (
	outcomeHedgeUnneeded = attribute.String("warren.attempt.outcome", "hedge_unneeded")
	outcomeOutpaced      = attribute.String("warren.attempt.outcome", "outpaced")
)

// MarkCalledOff marks the span in ctx when ctx was cancelled by the retry
// policy: a hedge no longer needed gets warren.attempt.outcome=
// hedge_unneeded and status Ok — set before the instrumentation marks the
// failed attempt Error, which the SDK then ignores (Unset would be
// overwritten) — so span-derived error rates do not count hedges; a first
// attempt outpaced by its hedge gets warren.attempt.outcome=outpaced and
// stays an Error (its instance was slow). The cause is compared, not
// matched with errors.Is: retry's errPanicked wraps ErrHedgeUnneeded (the
// other attempt panicked), and that call failed.
func MarkCalledOff(ctx context.Context) {
	if ctx.Err() == nil {
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	switch context.Cause(ctx) { //nolint:errorlint // sentinels, compared on purpose (above)
	case retry.ErrHedgeUnneeded:
		span.SetAttributes(outcomeHedgeUnneeded)
		span.SetStatus(otelcodes.Ok, "")
	case retry.ErrOutpaced:
		span.SetAttributes(outcomeOutpaced)
	}
}
