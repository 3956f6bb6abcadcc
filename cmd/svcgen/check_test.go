package main

import (
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
	msg := testDrift(out).Error()
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
