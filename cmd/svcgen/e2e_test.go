package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyRepo copies what a service needs to build — go.mod, go.sum,
// framework/, internal/, templates/, cmd/ (but cmd/usergrpc, a client of the
// demo services) — from this repository into a temporary
// directory, and returns it.
func copyRepo(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a copy of the repository; skipped with -short")
	}
	src, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum", "framework", "internal", "templates", "cmd"} {
		err := filepath.WalkDir(filepath.Join(src, name), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			out := filepath.Join(dst, rel)
			if d.IsDir() && rel == filepath.Join("cmd", "usergrpc") {
				return filepath.SkipDir // a client of the demo's services, which the copy leaves out
			}
			if d.IsDir() {
				return os.MkdirAll(out, 0o755)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(out, b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// goCmd runs the go command in dir with the module proxy off, so a test
// that needed the network would fail rather than download.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := goRun(t, dir, args...)
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// goRun is goCmd for a command that may fail: its output and error.
func goRun(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	t.Logf("go %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return string(out), err
}

// TestNew_PaymentBuildsVetsAndPassesItsTests is the promise of `svcgen
// new`: a fresh service builds, vets and passes its unit and conformance
// tests (a real instance in embedded etcd, called through the generated
// client) with no hand edit. The golden test services are built too, so
// every route shape the golden files show is known to compile.
func TestNew_PaymentBuildsVetsAndPassesItsTests(t *testing.T) {
	root := copyRepo(t)
	// A registry backend of the user's own (Warren's toy one stands in)
	// is listed by the main, etcd stays the default (report j48b F5).
	code, out, errOut := runCLI(t, "new", "payment", "--port", "8090", "--registry", "etcd", "--methods", "Charge",
		"--registry-package", "github.com/warren-mesh/warren/framework/registry/registrytest/toyregistry", "--root", root)
	if code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	for _, name := range []string{"shapes", "stubs"} {
		dir := filepath.Join(root, "services", name)
		os.MkdirAll(dir, 0o755)
		tdata := filepath.Join("internal", "gen", "testdata", name)
		goldens, _ := filepath.Glob(filepath.Join(tdata, "*.golden"))
		for _, g := range append([]string{filepath.Join(tdata, "service.go")}, goldens...) { // service.go.golden wins
			b, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, strings.TrimSuffix(filepath.Base(g), ".golden")), b, 0o644)
		}
	}
	goCmd(t, root, "build", "./...")
	goCmd(t, root, "vet", "./...")
	out = goCmd(t, root, "test", "-count=1", "-v", "./services/payment/...")
	for _, want := range []string{"--- PASS: TestHello_GreetsByName", "--- PASS: TestHello_GreetsWithTheGreetingSetting", "--- PASS: TestConformance_SettingsAreFlags", "--- PASS: TestConformance_HelloThroughDiscoveryAndClient"} {
		if !strings.Contains(out, want) {
			t.Errorf("go test output lacks %q:\n%s", want, out)
		}
	}

	// The service's own settings, through the generated main: listed by
	// --help beside the framework's, with their variables; a bad value
	// stops the start with exit 2 and says which.
	bin := filepath.Join(t.TempDir(), "payment")
	goCmd(t, root, "build", "-o", bin, "./services/payment/cmd/payment")
	help, code := runBin(t, bin, "--help")
	for _, want := range []string{"--greeting", "WARREN_GREETING", "the word Hello greets with", "--listen", "--config", "--toy-label", "--etcd-endpoints"} {
		if code != 0 || !strings.Contains(help, want) {
			t.Errorf("payment --help (exit %d) lacks %q:\n%s", code, want, help)
		}
	}
	bad, code := runBin(t, bin, "--greeting", " ")
	if code != 2 || !strings.Contains(bad, "--greeting must not be empty") {
		t.Errorf("payment --greeting ' ': exit %d, output %q; want exit 2 and the reason", code, bad)
	}

	// Settings fields the service could not start with fail its own
	// tests, every one named, before any deploy.
	svcFile := filepath.Join(root, "services", "payment", "service.go")
	src, err := os.ReadFile(svcFile)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "type Settings struct {\n", "type Settings struct {\n\tRate float32\n\tListen string\n", 1)
	if edited == string(src) {
		t.Fatal("service.go has no Settings struct to add fields to")
	}
	os.WriteFile(svcFile, []byte(edited), 0o644)
	out, err = goRun(t, root, "test", "-count=1", "-run", "TestConformance_SettingsAreFlags", "./services/payment/")
	for _, want := range []string{"Settings.Rate: type float32 is not supported", "Settings.Listen: flag --listen is already defined"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("go test with bad Settings fields: %v; output lacks %q:\n%s", err, want, out)
		}
	}
}

// runBin runs a built binary with a deadline and returns its output and
// exit code.
func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s: %v", bin, err)
	return "", 0
}

// TestGen_AddedMethodIsRoutedEndToEndAndUserCodeIsKept adds a method to a
// new service's interface, runs `svcgen gen`, and checks that the user's
// file is intact but for the appended stub, that a second gen changes
// nothing, and that the method answers over HTTP through the generated
// client once written.
func TestGen_AddedMethodIsRoutedEndToEndAndUserCodeIsKept(t *testing.T) {
	root := copyRepo(t)
	if code, out, errOut := runCLI(t, "new", "payment", "--root", root); code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	dir := filepath.Join(root, "services", "payment")
	sf := filepath.Join(dir, "service.go")
	edited := addMethod(t, sf, `	// Refund returns a payment.
	//warren:http POST /payments/{id}/refund 202
	//warren:idempotent
	Refund(ctx context.Context, req RefundRequest) (RefundResponse, error)`)
	edited = append(edited, []byte(`
// RefundRequest is the input of Refund.
type RefundRequest struct {
	ID     string `+"`json:\"id\"`"+`
	Reason string `+"`json:\"reason\"`"+`
}

// RefundResponse is the output of Refund.
type RefundResponse struct {
	ID     string `+"`json:\"id\"`"+`
	Reason string `+"`json:\"reason\"`"+`
}
`)...)
	os.WriteFile(sf, edited, 0o644)

	if code, out, errOut := runChecked(t, "gen", "payment", "--root", root); code != 0 {
		t.Fatalf("svcgen gen: exit %d\n%s%s", code, out, errOut)
	}
	after, _ := os.ReadFile(sf)
	if !bytes.HasPrefix(after, edited) {
		t.Fatalf("gen changed the user's code instead of appending:\n%s", after)
	}
	appended := string(after[len(edited):])
	const stub = "func (s *PaymentService) Refund(ctx context.Context, req RefundRequest) (RefundResponse, error) {\n\treturn RefundResponse{}, errNotImplemented(\"Refund\")\n}\n"
	if !strings.HasSuffix(appended, stub) || strings.Count(appended, "func ") != 1 || strings.Contains(appended, "type ") {
		t.Fatalf("appended more or other than the Refund stub:\n%s", appended)
	}
	for _, w := range []struct{ file, text string }{
		{"transport_gen.go", `r.Handle("POST /payments/{id}/refund", httptransport.NewServer(e.Refund, decodeRefundRequest, httptransport.EncodeJSONStatus(202), logger, opts...))`},
		{"transport_gen.go", `Refund: wrap(client.NewEndpoint[RefundRequest, RefundResponse](c, "POST", encodeRefundPath, client.Method("Refund"), client.Idempotent())),`},
		{"client_gen.go", "resp, err := c.e.Refund(ctx, req)"},
		{"endpoint_gen.go", "return s.Refund(ctx, req.(RefundRequest))"},
	} {
		if b, _ := os.ReadFile(filepath.Join(dir, w.file)); !strings.Contains(string(b), w.text) {
			t.Errorf("%s lacks %s", w.file, w.text)
		}
	}

	before := snapshot(t, dir)
	if code, out, errOut := runChecked(t, "gen", "payment", "--root", root); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("second gen: exit %d\n%s%s", code, out, errOut)
	}
	sameFiles(t, before, snapshot(t, dir))

	// Until it is written, the stub answers through the generated client
	// as a method not implemented: 501, svcerr.Unimplemented, its message.
	stubTest := filepath.Join(dir, "refund_stub_test.go")
	os.WriteFile(stubTest, []byte(`package payment_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/services/payment"
)

func TestRefund_StubAnswersNotImplemented(t *testing.T) {
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Refund(ctx, payment.RefundRequest{ID: "p1"})
	if svcerr.KindOf(err) != svcerr.Unimplemented || !strings.Contains(err.Error(), "501 not_implemented: Refund is not implemented yet") {
		t.Fatalf("stub answered %v (kind %s), want 501 not_implemented", err, svcerr.KindOf(err))
	}
}
`), 0o644)
	if out := goCmd(t, root, "test", "-count=1", "-v", "-run", "TestRefund_StubAnswersNotImplemented", "./services/payment/"); !strings.Contains(out, "--- PASS: TestRefund_StubAnswersNotImplemented") {
		t.Fatalf("go test output lacks the stub's test passing:\n%s", out)
	}
	os.Remove(stubTest)

	// The user writes the method; a test calls it through discovery and
	// the generated client, and the stub's error helper goes away.
	written := bytes.Replace(after, []byte(`return RefundResponse{}, errNotImplemented("Refund")`),
		[]byte(`return RefundResponse{ID: req.ID, Reason: req.Reason}, nil`), 1)
	os.WriteFile(sf, written, 0o644)
	if code, out, errOut := runChecked(t, "gen", "payment", "--root", root); code != 0 {
		t.Fatalf("gen after writing the method: exit %d\n%s%s", code, out, errOut)
	}
	os.WriteFile(filepath.Join(dir, "refund_test.go"), []byte(`package payment_test

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/services/payment"
)

func TestRefund_RoutedThroughTheGeneratedClient(t *testing.T) {
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Refund(ctx, payment.RefundRequest{ID: "p/1 x", Reason: "duplicate"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID != "p/1 x" || resp.Reason != "duplicate" {
		t.Fatalf("Refund = %+v", resp)
	}
}
`), 0o644)
	goCmd(t, root, "vet", "./services/payment/...")
	out := goCmd(t, root, "test", "-count=1", "-v", "./services/payment/...")
	for _, want := range []string{"--- PASS: TestRefund_RoutedThroughTheGeneratedClient", "--- PASS: TestHello_GreetsByName"} {
		if !strings.Contains(out, want) {
			t.Errorf("go test output lacks %q:\n%s", want, out)
		}
	}
}

// TestGen_ChangedSignatureIsReportedWithTheMethodAndExitOne: when the
// interface changes a method's signature, gen writes code that follows the
// interface, compiles the service, and exits 1 naming the method, with the
// compiler's have/want lines and what to change.
func TestGen_ChangedSignatureIsReportedWithTheMethodAndExitOne(t *testing.T) {
	root := copyRepo(t)
	if code, out, errOut := runCLI(t, "new", "payment", "--root", root); code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	sf := filepath.Join(root, "services", "payment", "service.go")
	b, _ := os.ReadFile(sf)
	changed := strings.Replace(string(b), "\tHello(ctx context.Context, req HelloRequest) (HelloResponse, error)\n}",
		"\tHello(ctx context.Context, req HelloRequest) (HelloRequest, error)\n}", 1)
	if changed == string(b) {
		t.Fatal("the interface's Hello line was not found")
	}
	os.WriteFile(sf, []byte(changed), 0o644)
	code, out, errOut := runChecked(t, "gen", "payment", "--root", root)
	if code != exitFailed {
		t.Fatalf("gen: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"the generated code was written, but the service does not compile",
		"does not implement Service (wrong type for method Hello)",
		"have Hello(context.Context, HelloRequest) (HelloResponse, error)",
		"want Hello(context.Context, HelloRequest) (HelloRequest, error)",
		"service.go:", "no longer implements Service (wrong type for method Hello)", "change the method's signature",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	t.Logf("gen reported:\n%s", errOut)
	// --no-check writes the same and exits 0.
	if code, out, errOut := runChecked(t, "gen", "payment", "--no-check", "--root", root); code != 0 {
		t.Fatalf("gen --no-check: exit %d\n%s%s", code, out, errOut)
	}
}

// TestNew_GRPCServiceBuildsAndGenKeepsItInStep: `svcgen new --grpc` writes
// a service whose .proto protoc compiled, whose main serves both
// transports (--grpc-listen) and which builds, vets and passes its tests,
// its conformance test calling it over HTTP and over gRPC;
// gen then changes nothing without running protoc, and restores a deleted
// .pb.go byte for byte.
func TestNew_GRPCServiceBuildsAndGenKeepsItInStep(t *testing.T) {
	root := copyRepo(t)
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(root, "bin")); err != nil { // protoc's plugins (make protoc)
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "new", "ledger", "--grpc", "--methods", "Post", "--root", root)
	if code != 0 {
		t.Fatalf("svcgen new --grpc: exit %d\n%s%s (needs `make protoc`)", code, out, errOut)
	}
	svc := filepath.Join(root, "services", "ledger")
	for _, fn := range []string{"grpc_gen.go", "ledgerpb/ledger.proto", "ledgerpb/ledger.pb.go", "ledgerpb/ledger_grpc.pb.go"} {
		if _, err := os.Stat(filepath.Join(svc, fn)); err != nil {
			t.Fatalf("svcgen new --grpc wrote no %s: %v\n%s", fn, err, out)
		}
	}
	goCmd(t, root, "vet", "./services/ledger/...")
	out = goCmd(t, root, "test", "-count=1", "-v", "./services/ledger/...")
	for _, test := range []string{"TestConformance_HelloThroughDiscoveryAndClient", "TestConformance_HelloOverGRPC"} {
		if !strings.Contains(out, "--- PASS: "+test) {
			t.Errorf("go test output lacks the conformance test %s:\n%s", test, out)
		}
	}
	exe := filepath.Join(t.TempDir(), "ledger")
	goCmd(t, root, "build", "-o", exe, "./services/ledger/cmd/ledger")
	if help, code := runBin(t, exe, "--help"); code != 0 || !strings.Contains(help, "--grpc-listen") || !strings.Contains(help, "WARREN_GRPC_LISTEN") {
		t.Errorf("ledger --help (exit %d) lacks --grpc-listen:\n%s", code, help)
	}

	pb := filepath.Join(svc, "ledgerpb", "ledger.pb.go")
	want, _ := os.ReadFile(pb)
	if code, out, errOut := runCLI(t, "gen", "ledger", "--root", root, "--no-check"); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("second gen: exit %d\n%s%s; want up to date", code, out, errOut)
	}
	os.Remove(pb)
	code, out, errOut = runCLI(t, "gen", "ledger", "--root", root, "--no-check")
	got, _ := os.ReadFile(pb)
	if code != 0 || !bytes.Equal(got, want) || !strings.Contains(out, "ledgerpb/ledger.pb.go (create)") {
		t.Fatalf("gen after deleting ledger.pb.go: exit %d, restored identical: %v\n%s%s", code, bytes.Equal(got, want), out, errOut)
	}

	// A field added to a request without gen: the build passes, but over
	// gRPC the field would never travel (report j50b 3); the generated
	// grpc_gen_test.go fails naming it, and passes once gen ran.
	sf := filepath.Join(svc, "service.go")
	src, _ := os.ReadFile(sf)
	edited := strings.Replace(string(src), "type PostRequest struct{}", "type PostRequest struct {\n\tAmount int64 `json:\"amount\"`\n\tNote   *string `json:\"note\"`\n}", 1)
	if edited == string(src) {
		t.Fatal("service.go has no empty PostRequest to add a field to")
	}
	os.WriteFile(sf, []byte(edited), 0o644)
	goCmd(t, root, "vet", "./services/ledger/...")
	out, err = goRun(t, root, "test", "-count=1", "-run", "TestGRPCGen_EveryFieldTravels", "./services/ledger/")
	for _, want := range []string{"--- FAIL: TestGRPCGen_EveryFieldTravels", "PostRequest.Amount: sent", "PostRequest.Note: sent", "run `svcgen gen`"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("go test with a field added without gen: %v; output lacks %q:\n%s", err, want, out)
		}
	}
	if code, out, errOut := runChecked(t, "gen", "ledger", "--root", root); code != 0 {
		t.Fatalf("gen after adding the field: exit %d\n%s%s", code, out, errOut)
	}
	if out := goCmd(t, root, "test", "-count=1", "-v", "-run", "TestGRPCGen_EveryFieldTravels", "./services/ledger/"); !strings.Contains(out, "--- PASS: TestGRPCGen_EveryFieldTravels") {
		t.Errorf("after gen the round trip does not pass:\n%s", out)
	}

	// A method removed from the interface (report j50b 4): svcgen's own
	// test follows the interface, and gen's check compiles the tests, so
	// conformance_test.go — the user's, which calls Hello — is named with
	// what to do, exit 1, instead of a success that `go vet` contradicts.
	src, _ = os.ReadFile(sf)
	removed := strings.Replace(string(src), "\t//warren:http GET /hello/{name}\n\tHello(ctx context.Context, req HelloRequest) (HelloResponse, error)\n", "", 1)
	if removed == string(src) {
		t.Fatal("the interface's Hello method was not found")
	}
	os.WriteFile(sf, []byte(removed), 0o644)
	conformance := filepath.Join(svc, "conformance_test.go")
	userTest, _ := os.ReadFile(conformance)
	code, out, errOut = runChecked(t, "gen", "ledger", "--root", root)
	if code != exitFailed {
		t.Fatalf("gen after removing Hello: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"the service builds, but its tests do not compile", "services/ledger/conformance_test.go:", "it calls Hello, which the service no longer has", "this test file is yours"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("gen's report lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "grpc_gen_test.go") {
		t.Errorf("gen's report names its own test, which it rewrote to follow the interface:\n%s", errOut)
	}
	if after, _ := os.ReadFile(conformance); !bytes.Equal(after, userTest) {
		t.Errorf("gen changed the user's conformance_test.go")
	}
	t.Logf("gen reported:\n%s", errOut)
	// The user drops the tests of Hello: gen passes, and so do the tests.
	os.Remove(conformance)
	if code, out, errOut := runChecked(t, "gen", "ledger", "--root", root); code != 0 {
		t.Fatalf("gen once the stale test is gone: exit %d\n%s%s", code, out, errOut)
	}
	goCmd(t, root, "vet", "./services/ledger/...")
	if out := goCmd(t, root, "test", "-count=1", "-v", "./services/ledger/..."); !strings.Contains(out, "--- PASS: TestGRPCGen_EveryFieldTravels") {
		t.Errorf("go test after removing Hello:\n%s", out)
	}
}
