package tracing

import (
	"context"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// SampleRatio records about that share of new traces (a flood recorded in
// full fills the batch queue and the rest are dropped, report j47c); 1
// records every one, and OTEL_TRACES_SAMPLER decides when it is set.
func TestNewProvider_SampleRatio(t *testing.T) {
	count := func(ratio float64) int {
		var out syncbuf.Buffer
		tp, shutdown, err := NewProvider(context.Background(), Config{Service: "s", Stdout: &out, SampleRatio: ratio})
		if err != nil {
			t.Fatal(err)
		}
		for range 1000 {
			_, span := tp.Tracer("t").Start(context.Background(), "op")
			span.End()
		}
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		return strings.Count(out.String(), `"Name":"op"`)
	}
	if n := count(1); n != 1000 {
		t.Errorf("ratio 1: %d of 1000 traces recorded, want all", n)
	}
	// Trace IDs are random: a tenth is 100 on average; 40..200 is far
	// outside chance (and far from 0 and 1000).
	if n := count(0.1); n < 40 || n > 200 {
		t.Errorf("ratio 0.1: %d of 1000 traces recorded, want about 100", n)
	}
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	if n := count(1); n != 0 {
		t.Errorf("OTEL_TRACES_SAMPLER=always_off: %d traces recorded, want none", n)
	}
}
