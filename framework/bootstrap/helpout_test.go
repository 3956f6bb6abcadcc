package bootstrap

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// helpChildEnv makes TestMain_HelpOnStdoutErrorsOnStderr the service
// process, run by Main with the arguments the variable holds.
const helpChildEnv = "WARREN_BOOTSTRAP_HELP_CHILD"

// `user --help | grep etcd` printed the whole table: help went to stderr
// (report j60a F10). Help asked for goes to stdout, exit 0, nothing on
// stderr; a bad flag is one line on stderr, exit 2, nothing on stdout.
func TestMain_HelpOnStdoutErrorsOnStderr(t *testing.T) {
	if args := os.Getenv(helpChildEnv); args != "" {
		os.Args = append([]string{"svc"}, strings.Fields(args)...)
		Main("svc", "1", hello, toys)
		return
	}
	for _, tc := range []struct {
		args           string
		code           int
		stdout, stderr string // each "" for none
	}{
		{"--help", 0, "WARREN_LISTEN", ""},
		{"-h", 0, "svc healthcheck [flags]", ""},
		{"healthcheck --help", 0, "GET /readyz", ""},
		{"--bogus", 2, "", "--bogus"},
		{"healthcheck --bogus", 2, "", "--bogus"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMain_HelpOnStdoutErrorsOnStderr$", "-test.timeout=30s")
		cmd.Env = append(os.Environ(), helpChildEnv+"="+tc.args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		cancel()
		code := cmd.ProcessState.ExitCode()
		ok := func(got *bytes.Buffer, want string) bool {
			if want == "" {
				return got.Len() == 0
			}
			return strings.Contains(got.String(), want)
		}
		if code != tc.code || !ok(&stdout, tc.stdout) || !ok(&stderr, tc.stderr) {
			t.Errorf("svc %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q (\"\": empty)",
				tc.args, code, trim(stdout.String()), trim(stderr.String()), tc.code, tc.stdout, tc.stderr)
		}
	}
}

// trim shortens a long output for a failure message.
func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
