package warrencli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
)

func TestRun_ExitCodesAndUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"help"}, 0, "watch SERVICE"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"ls", "-h"}, 0, "--etcd-endpoints"},
		{[]string{"ls", "--registry=nope", "user"}, 2, "unknown registry backend"},
		{[]string{"watch"}, 2, "one SERVICE"},
		// A bad flag or value is one line naming it and the form wanted,
		// not the flag package's "parse error" under the flag list.
		{[]string{"nginx", "--debounce", "abc"}, 2, "warren nginx: --debounce \"abc\": want a duration such as 5s or 1m30s (warren nginx -h for help)\n"},
		{[]string{"ls", "--bogus"}, 2, "warren ls: unknown flag --bogus (warren ls -h for help)\n"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String()+out.String(), tc.want) ||
			(code == 2 && len(tc.args) > 1 && strings.Count(errOut.String(), "\n") != 1) {
			t.Errorf("warren %q: exit %d, output %q; want exit %d and %q", tc.args, code, errOut.String()+out.String(), tc.code, tc.want)
		}
	}
}

// TestRun_LsOfANamedServiceWithNoInstanceExits3: a deploy script's "is
// it up?" tells "no instance" (3) from "cannot read" (1) and a bad
// command line (2), and the line names the service, not "nothing
// registered" (report j53d 8).
func TestRun_LsOfANamedServiceWithNoInstanceExits3(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"ls", "--registry=memory", "payment"}, &out, &errOut, registry.Backends{memory.Backend()})
	if code != 3 || errOut.String() != "warren ls: no instance of payment in the memory registry\n" {
		t.Errorf("warren ls payment on an empty registry: exit %d, stderr %q; want 3 and %q", code, errOut.String(), "warren ls: no instance of payment in the memory registry\n")
	}
}

// run is Run with the backends Warren's own cmd/warren lists.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, stdout, stderr, registry.Backends{etcd.Backend(), consul.Backend(), zookeeper.Backend(), kubernetes.Backend()})
}

// TestRun_LsOfARegistryItCannotReadExits1: "cannot read" is exit 1, told
// apart from "no instance" (3) and a bad command line (2), and the line
// says which service was not read. Mutation audit M6: kills Run's
// default case answering 0.
func TestRun_LsOfARegistryItCannotReadExits1(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	// Port 1 on loopback: nothing listens there, so etcd is never reached.
	code := run(ctx, []string{"ls", "--etcd-endpoints=127.0.0.1:1", "--timeout=2s", "payment"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "payment") {
		t.Errorf("warren ls payment with etcd unreachable: exit %d, stderr %q; want 1 naming payment", code, errOut.String())
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want no table when nothing was read", out.String())
	}
}

// `warren ls -h | grep etcd` filtered nothing: help went to stderr
// (report j60a F10). Help asked for is on stdout, exit 0, nothing on
// stderr; a mistake is on stderr, exit 2, nothing on stdout.
func TestRun_HelpOnStdoutErrorsOnStderr(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // each "" for none
	}{
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"help"}, 0, "Commands:", ""},
		{[]string{"ls", "-h"}, 0, "-etcd-ca", ""},
		{[]string{"watch", "--help"}, 0, "-etcd-ca", ""},
		{[]string{"page", "-h"}, 0, "-page-listen", ""},
		{[]string{"nginx", "-h"}, 0, "-debounce", ""},
		{[]string{"xds", "-h"}, 0, "-envoy-listen", ""},
		{nil, 2, "", "Commands:"},
		{[]string{"ls", "--bogus"}, 2, "", "unknown flag --bogus"},
		{[]string{"xds", "--bogus"}, 2, "", "unknown flag --bogus"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		ok := func(got *bytes.Buffer, want string) bool {
			if want == "" {
				return got.Len() == 0
			}
			return strings.Contains(got.String(), want)
		}
		if code != tc.code || !ok(&out, tc.stdout) || !ok(&errOut, tc.stderr) {
			t.Errorf("warren %q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q (\"\": empty)",
				tc.args, code, trim(out.String()), trim(errOut.String()), tc.code, tc.stdout, tc.stderr)
		}
	}
}

// trim shortens a long output for a failure message.
func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
