package meshup

import (
	"bytes"
	"strings"
	"testing"
)

// `meshup -h | grep page` filtered nothing: help went to stderr (report
// j60a F10). Help asked for is on stdout, exit 0, nothing on stderr; a
// bad flag is on stderr, exit 2, nothing on stdout.
func TestParseFlags_HelpOnStdoutErrorsOnStderr(t *testing.T) {
	names := []string{"etcd", "consul"}
	var out, errOut bytes.Buffer
	if _, code := parseFlags([]string{"-h"}, names, &out, &errOut); code != 0 || !strings.Contains(out.String(), "-instances") || errOut.Len() != 0 {
		t.Errorf("-h: exit %d, stdout %q, stderr %q; want 0, the flags on stdout, nothing on stderr", code, out.String(), errOut.String())
	}
	out.Reset()
	if _, code := parseFlags([]string{"-bogus"}, names, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "-bogus") || out.Len() != 0 {
		t.Errorf("-bogus: exit %d, stdout %q, stderr %q; want 2, the error on stderr, nothing on stdout", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	t.Setenv("REGISTRY", "")
	f, code := parseFlags([]string{"-instances", "3", "-registry", "consul"}, names, &out, &errOut)
	if code != -1 || f.instances != 3 || f.registry != "consul" || out.Len()+errOut.Len() != 0 {
		t.Errorf("-instances 3 -registry consul: code %d, flags %+v, output %q", code, f, out.String()+errOut.String())
	}
}
