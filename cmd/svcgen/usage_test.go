package main

import (
	"regexp"
	"strings"
	"testing"
)

// The summary svcgen --help prints lists every flag of each command, so
// a flag added to a command cannot be missing from it: --registry-package
// and --renumber were (re-test j56b). --root, common to the commands that
// take it, is described once below the summary.
func TestUsage_SummaryListsEveryFlag(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
	for _, cmd := range []string{"init", "new", "gen"} {
		code, out, errOut := runCLI(t, cmd, "--help")
		if code != 0 {
			t.Fatalf("svcgen %s --help: exit %d\n%s%s", cmd, code, out, errOut)
		}
		var line string
		for _, l := range strings.Split(usage, "\n") {
			if strings.HasPrefix(l, "  svcgen "+cmd+" ") {
				line = l
			}
		}
		if line == "" {
			t.Fatalf("the usage summary has no line for %s", cmd)
		}
		flags := flagLine.FindAllStringSubmatch(out, -1)
		if len(flags) == 0 {
			t.Fatalf("svcgen %s --help lists no flag:\n%s", cmd, out)
		}
		for _, m := range flags {
			if m[1] != "root" && !strings.Contains(line, "--"+m[1]) {
				t.Errorf("svcgen %s has --%s, which the summary line leaves out: %q", cmd, m[1], line)
			}
		}
	}
}
