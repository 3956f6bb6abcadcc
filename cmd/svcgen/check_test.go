package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTestDrift_NamesTheUsersTestFileAndTheMethod: the report for tests
// that no longer compile after gen (report j50b 4) names each test file of
// the user's once, with the method it calls and what to do, and not
// svcgen's own *_gen_test.go, which gen rewrote.
func TestTestDrift_NamesTheUsersTestFileAndTheMethod(t *testing.T) {
	out := "# example.com/shop/services/payment_test [example.com/shop/services/payment.test]\n" +
		"vet: services/payment/conformance_test.go:72:17: c.Hello undefined (type *payment.Client has no field or method Hello)\n" +
		"services/payment/conformance_test.go:90:3: c.Hello undefined (type *payment.Client has no field or method Hello)\n" +
		"services/payment/hello_test.go:9:12: undefined: payment.HelloRequest\n" +
		"services/payment/grpc_gen_test.go:20:2: undefined: toPBX\n"
	msg := testDrift(t.TempDir(), out, true).Error()
	for _, want := range []string{
		"the service builds, but its tests do not compile:\n  services/payment/conformance_test.go:72:17: c.Hello undefined",
		"services/payment/conformance_test.go:72: it calls Hello, which the service no longer has: this test file is yours",
		"services/payment/hello_test.go:9: it uses HelloRequest, which the service no longer declares",
		"change or delete the tests",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
	if strings.Count(msg, "conformance_test.go:") != 3 || strings.Contains(msg, "grpc_gen_test.go:20: ") || strings.Contains(msg, "# ") {
		t.Errorf("report names a file twice, svcgen's own test, or the go command's headers:\n%s", msg)
	}
}

// TestTestDrift_SaysWhetherThisRunWroteTheGeneratedCode: a gen run that
// wrote nothing (it printed "up to date") does not claim it wrote the
// generated code (report u6 R2): the tests' failure is older than the run.
func TestTestDrift_SaysWhetherThisRunWroteTheGeneratedCode(t *testing.T) {
	out := "services/payment/conformance_test.go:72:17: c.Hello undefined (type *payment.Client has no field or method Hello)\n"
	for _, c := range []struct {
		wrote     bool
		want, not string
	}{
		{true, "the generated code was written and the service builds, but its tests do not compile:\n", "up to date"},
		{false, "the generated code is up to date and the service builds, but its tests do not compile:\n", "was written"},
	} {
		msg := testDrift(t.TempDir(), out, c.wrote).Error()
		if !strings.HasPrefix(msg, c.want) || strings.Contains(msg, c.not) {
			t.Errorf("wrote=%v: report starts %q, want %q and no %q", c.wrote, msg[:min(len(msg), 90)], c.want, c.not)
		}
	}
}

// TestGen_TellsTheCheckWhetherItWroteAnything: gen passes the check
// whether this run wrote files, so its message can say "up to date"
// (report u6 R2). Right after new, gen writes nothing; after a method is
// added, it writes.
func TestGen_TellsTheCheckWhetherItWroteAnything(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	var got []bool
	check := func(_ string, _ []string, wrote bool) error {
		got = append(got, wrote)
		return nil
	}
	if code, out, errOut := runIn(root, check, "gen", "payment", "--root", root); code != exitOK || !strings.Contains(out, "services/payment: up to date") {
		t.Fatalf("gen after new: exit %d, want 0 and up to date\n%s%s", code, out, errOut)
	}
	addMethod(t, filepath.Join(root, "services", "payment", "service.go"),
		"\tRefund(ctx context.Context, req RefundRequest) (RefundResponse, error)")
	if code, out, errOut := runIn(root, check, "gen", "payment", "--root", root); code != exitOK || !strings.Contains(out, "services/payment: wrote") {
		t.Fatalf("gen after a new method: exit %d, want 0 and files written\n%s%s", code, out, errOut)
	}
	if !slices.Equal(got, []bool{false, true}) {
		t.Errorf("typecheck was told wrote=%v, want [false true] (up to date, then written)", got)
	}
}
