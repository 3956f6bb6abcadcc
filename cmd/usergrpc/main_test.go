package main

import (
	"bytes"
	"strings"
	"testing"
)

// usergrpc takes the client half of the services' TLS flags, so it can
// reach a TLS mesh with a private CA and mutual TLS.
func TestRun_TakesTheServicesTLSClientFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	for _, f := range []string{"-tls-ca", "-tls-cert", "-tls-key"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("-h lists no %s:\n%s", f, out.String())
		}
	}
	errOut.Reset()
	if code := run([]string{"--tls-cert", "c.pem", "list"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--tls-cert and --tls-key go together") {
		t.Fatalf("a certificate without its key: exit %d, %q; want 2 and the reason", code, errOut.String())
	}
}

// A command line that is not a call names what is missing, not
// "unknown command []".
func TestRequest_SaysWhatTheCommandLineLacks(t *testing.T) {
	for args, want := range map[string]string{
		"":            "no command: want create NAME EMAIL, get ID or list",
		"get":         "get takes 1 argument(s), got 0: want get ID",
		"create ada":  "create takes 2 argument(s), got 1: want create NAME EMAIL",
		"delete u-1":  `unknown command "delete": want create NAME EMAIL, get ID or list`,
		"list extras": "list takes 0 argument(s), got 1: want list",
	} {
		if _, err := request(strings.Fields(args)); err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %q", args, err, want)
		}
	}
	if call, err := request([]string{"get", "u-1"}); err != nil || call == nil {
		t.Errorf("get u-1: %v", err)
	}
}

// `usergrpc -h | grep tls` filtered nothing: help went to stderr (report
// j60a F10). Help asked for is on stdout, exit 0; a bad flag on stderr,
// exit 2.
func TestRun_HelpOnStdoutErrorsOnStderr(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "usage: usergrpc") || errOut.Len() != 0 {
		t.Errorf("--help: exit %d, stdout %q, stderr %q; want 0, the usage on stdout, nothing on stderr", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"--bogus"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--bogus") || out.Len() != 0 {
		t.Errorf("--bogus: exit %d, stdout %q, stderr %q; want 2, the error on stderr, nothing on stdout", code, out.String(), errOut.String())
	}
}
