package bootstrap

import (
	"context"
	"errors"
	"io"
	"testing"
)

// docs/observability.md: --trace-sample-ratio is the share of the traces
// a service starts that are recorded. Its range was checked by config;
// nothing checked that it reaches the tracer: Run passing a fixed 1
// passed every test, and a service told to record one trace in a
// thousand recorded all of them. A ratio of 1e-9 records none of 50 new
// traces (the chance that one is chosen is 5e-8); the default records all.
func TestRun_TraceSampleRatioReachesTheTracer(t *testing.T) {
	// The SDK's own default, whatever the environment running the test
	// says: with ratio 1 the variable decides (docs/observability.md).
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
	for _, c := range []struct {
		flags    []string
		recorded int
	}{{nil, 50}, {[]string{"--trace-sample-ratio", "0.000000001"}, 0}} {
		recorded := -1
		build := func(ctx context.Context, d *Deps) (Transports, error) {
			recorded = 0
			tr := d.TracerProvider.Tracer("guard")
			for range 50 {
				_, span := tr.Start(context.Background(), "root")
				if span.SpanContext().IsSampled() {
					recorded++
				}
				span.End()
			}
			return Transports{}, errors.New("stop here")
		}
		// --trace-stdout: a real provider, not the no-op one tracing
		// uses when spans go nowhere.
		args := append([]string{"--registry", "toy", "--listen", "127.0.0.1:0", "--trace-stdout"}, c.flags...)
		if code := Run(context.Background(), "svc", "1", args, io.Discard, build, toys); code != 1 {
			t.Fatalf("%v: exit %d, want 1 (the build's error)", c.flags, code)
		}
		if recorded != c.recorded {
			t.Errorf("%v: %d of 50 new traces recorded, want %d", c.flags, recorded, c.recorded)
		}
	}
}
