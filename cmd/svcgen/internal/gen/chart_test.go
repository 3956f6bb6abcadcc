package gen

import (
	"strings"
	"testing"
)

// TestChartAddGRPCPort: the line goes at the end of the entry at the
// entry's own indentation, everything else stays byte for byte; an entry
// that sets grpcPort (even 0: the user's choice) or is absent is left
// alone; an entry the line cannot go in safely is an error.
func TestChartAddGRPCPort(t *testing.T) {
	const head = "services:\n  user:\n    replicas: 2\n"
	const tail = "  # svcgen: chart services go above this line\n"
	for _, c := range []struct {
		name, in, want string
		ok             bool
		err            bool
	}{
		{name: "plain", ok: true,
			in:   head + "  pay:\n    replicas: 2\n" + tail,
			want: head + "  pay:\n    replicas: 2\n    grpcPort: 9090\n" + tail},
		{name: "user edits kept, blank line and comment after the entry", ok: true,
			in:   head + "  pay:\n      # three\n      replicas: 3\n      env:\n        A: b\n\n  # next one\n  other:\n    replicas: 1\n" + tail,
			want: head + "  pay:\n      # three\n      replicas: 3\n      env:\n        A: b\n      grpcPort: 9090\n\n  # next one\n  other:\n    replicas: 1\n" + tail},
		{name: "last in the file, no newline", ok: true,
			in:   head + "  pay:\n    replicas: 2",
			want: head + "  pay:\n    replicas: 2\n    grpcPort: 9090\n"},
		{name: "empty entry", ok: true,
			in:   head + "  pay:\n" + tail,
			want: head + "  pay:\n    grpcPort: 9090\n" + tail},
		{name: "grpcPort 0 is the user's", in: head + "  pay:\n    grpcPort: 0\n    replicas: 2\n" + tail},
		{name: "grpcPort set", in: head + "  pay:\n    grpcPort: 7000\n" + tail},
		{name: "nested grpcPort is not the entry's", ok: true,
			in:   head + "  pay:\n    env:\n      grpcPort: x\n" + tail,
			want: head + "  pay:\n    env:\n      grpcPort: x\n    grpcPort: 9090\n" + tail},
		{name: "absent", in: head + tail},
		{name: "not under services", err: true, in: "defaults:\n  pay:\n    x: 1\n" + head + tail},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok, err := ChartAddGRPCPort([]byte(c.in), "pay")
			if (err != nil) != c.err || ok != c.ok {
				t.Fatalf("ok %t, err %v; want ok %t, error %t", ok, err, c.ok, c.err)
			}
			if err != nil && !strings.Contains(err.Error(), "pay") {
				t.Errorf("error %q does not name the service", err)
			}
			if ok && string(out) != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", out, c.want)
			}
		})
	}
}
