package main

import (
	"maps"
	"os"
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
	msg := testDrift(t.TempDir(), out, map[string]bool{"services/payment": true}).Error()
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
		msg := testDrift(t.TempDir(), out, map[string]bool{"services/payment": c.wrote}).Error()
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
	check := func(_ string, _ []string, wrote map[string]bool) error {
		got = append(got, wrote["services/payment"])
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

// TestGen_ADeployEntryAloneIsNotGeneratedCodeWritten (review s58-r2 F3):
// a gen that only adds the service back to compose.yaml — its generated
// code is up to date — tells the check the service's code was not
// written, so a failure would not open with "the generated code was
// written" under "services/payment: up to date". Fails when gen passes
// whether it wrote any file, deploy files included.
func TestGen_ADeployEntryAloneIsNotGeneratedCodeWritten(t *testing.T) {
	root := initProject(t)
	compose := filepath.Join(root, "deploy", "compose", "compose.yaml")
	before, err := os.ReadFile(compose)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	if err := os.WriteFile(compose, before, 0o644); err != nil {
		t.Fatal(err)
	}
	var got map[string]bool
	check := func(_ string, _ []string, wrote map[string]bool) error {
		got = wrote
		return nil
	}
	code, out, errOut := runIn(root, check, "gen", "payment", "--root", root)
	if code != exitOK || !strings.Contains(out, "added payment to deploy/compose/compose.yaml") || !strings.Contains(out, "services/payment: up to date") {
		t.Fatalf("gen: exit %d, want 0, the compose entry added and the code up to date\n%s%s", code, out, errOut)
	}
	if want := map[string]bool{"services/payment": false}; !maps.Equal(got, want) {
		t.Errorf("typecheck was told wrote=%v, want %v", got, want)
	}
}

// TestGenState_SpeaksOfTheServicesThatFail: with several services, the
// report's opening is about those the compiler names: one written, one
// up to date, or each named when both fail; every service when the
// compiler names none of them (only code outside the project fails).
func TestGenState_SpeaksOfTheServicesThatFail(t *testing.T) {
	wrote := map[string]bool{"services/ledger": true, "services/payment": false}
	const (
		ledger  = "services/ledger/service.go:3:1: undefined: x\n"
		payment = "vet: services/payment/payment_test.go:3:1: undefined: y\n"
		outside = "../lib/lib.go:3:1: undefined: z\n"
	)
	for _, c := range []struct{ out, want string }{
		{ledger, "the generated code was written"},
		{payment, "the generated code is up to date"},
		{payment + ledger, "the generated code of services/ledger was written and that of services/payment is up to date"},
		{outside, "the generated code of services/ledger was written and that of services/payment is up to date"},
	} {
		root := t.TempDir()
		if got := genState(root, c.out, wrote); got != c.want {
			t.Errorf("report %q: %q, want %q", c.out, got, c.want)
		}
	}
}
