package warrencli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The defaults docs/edge.md's flag tables give for `warren nginx` and
// `warren xds`, read from their own -h (what a user sees): debounce
// 200 ms, max delay 1 s, nginx's read timeout 3 s, state directory
// .warren/edge-nginx and non-idempotent retries off; xDS's Envoy
// listener 0.0.0.0:10000.
// The watcher's and nginx's own defaults are tested in their packages;
// these flags set them again, and a changed flag default passed every
// test.
func TestEdgeCommands_FlagDefaultsAreTheDocumentedOnes(t *testing.T) {
	for cmd, wants := range map[string]map[string]string{
		"nginx": {"debounce": "200ms", "max-delay": "1s", "read-timeout": "3s", "dir": ".warren/edge-nginx", "retry-non-idempotent": "false"},
		"xds":   {"debounce": "200ms", "max-delay": "1s", "envoy-listen": "0.0.0.0:10000"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{cmd, "-h"}, &out, &errOut); code != 0 {
			t.Fatalf("warren %s -h: exit %d, stderr %s", cmd, code, errOut.String())
		}
		for flag, def := range wants {
			if got := flagHelp(out.String(), flag); !strings.HasSuffix(got, "(default "+def+")") {
				t.Errorf("warren %s -h, --%s: %q; documented default %s", cmd, flag, got, def)
			}
		}
	}
}

// flagHelp returns the help text of one flag in a flag.PrintDefaults
// listing ("  -name value\n    \ttext (default x)"), trimmed.
func flagHelp(usage, flag string) string {
	_, rest, ok := strings.Cut(usage, "\n  -"+flag+" ")
	if !ok {
		_, rest, ok = strings.Cut(usage, "\n  -"+flag+"\n")
	}
	if !ok {
		return ""
	}
	text, _, _ := strings.Cut(rest, "\n  -")
	return strings.TrimSpace(text)
}
