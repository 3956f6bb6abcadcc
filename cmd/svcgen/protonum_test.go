package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGen_EditedMessageStaysReadableByCallersOfTheOldProto: a field
// inserted in the middle of a request type and another removed, then
// `svcgen gen` (protoc compiles the result): a request encoded with the
// old .proto — a caller in another language, or an instance of the
// previous release in a rolling deploy — decodes with the new one to the
// same values for the fields both have, by protoc itself. Numbering the
// fields by their order would hand the old amount to the new currency.
// The removed field then restored as it was gets its number back, and the
// old request's value of it arrives again.
func TestGen_EditedMessageStaysReadableByCallersOfTheOldProto(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Fatalf("protoc not on PATH (make protoc): %v", err)
	}
	p := absentServiceName(t)
	root := fakeRoot(t)
	linkBin(t, root)
	name := p("ledger")
	if code, out, errOut := runCLI(t, "new", name, "--grpc", "--methods", "Post", "--root", root); code != 0 {
		t.Fatalf("svcgen new --grpc: exit %d\n%s%s (needs `make protoc`)", code, out, errOut)
	}
	dir := filepath.Join(root, "services", name)
	pkg := strings.ReplaceAll(name, "-", "")
	proto := filepath.Join(dir, pkg+"pb", pkg+".proto")
	setRequest := func(fields string) {
		t.Helper()
		svc := filepath.Join(dir, "service.go")
		src, err := os.ReadFile(svc)
		if err != nil {
			t.Fatal(err)
		}
		s := string(src)
		i := strings.Index(s, "type PostRequest struct")
		j := i + strings.Index(s[i:], "}")
		if i < 0 || j < i {
			t.Fatalf("no PostRequest in service.go:\n%s", s)
		}
		s = s[:i] + "type PostRequest struct {\n" + fields + "\n" + s[j:]
		if err := os.WriteFile(svc, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := runCLI(t, "gen", name, "--no-check", "--root", root); code != 0 {
			t.Fatalf("svcgen gen: exit %d\n%s%s", code, out, errOut)
		}
	}
	setRequest("\tAccount string `json:\"account\"`\n\tAmount int64 `json:\"amount\"`\n\tMemo string `json:\"memo\"`")
	old := filepath.Join(t.TempDir(), pkg+".proto")
	b, err := os.ReadFile(proto)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, b, 0o644); err != nil {
		t.Fatal(err)
	}
	setRequest("\tAccount string `json:\"account\"`\n\tCurrency string `json:\"currency\"`\n\tAmount int64 `json:\"amount\"`")

	msg := pkg + ".v1.PostRequest"
	enc := exec.Command(protoc, "-I", filepath.Dir(old), "--encode="+msg, filepath.Base(old))
	enc.Stdin = strings.NewReader(`account: "acme" amount: 1250 memo: "rent"`)
	wire, err := enc.Output()
	if err != nil {
		t.Fatalf("protoc --encode with the old .proto: %v", err)
	}
	decode := func() string {
		t.Helper()
		dec := exec.Command(protoc, "-I", filepath.Dir(proto), "--decode="+msg, filepath.Base(proto))
		dec.Stdin = strings.NewReader(string(wire))
		text, err := dec.CombinedOutput()
		if err != nil {
			t.Fatalf("protoc --decode with the new .proto: %v\n%s", err, text)
		}
		return string(text)
	}
	got := decode()
	for _, want := range []string{`account: "acme"`, `amount: 1250`} {
		if !strings.Contains(got, want) {
			t.Errorf("decoded with the new .proto, the old request lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "currency") {
		t.Errorf("a value of the old request landed in the new field currency:\n%s", got)
	}
	t.Logf("old request read with the new .proto:\n%s", got)

	// Memo back as it was (a revert): the old caller's memo arrives again.
	setRequest("\tAccount string `json:\"account\"`\n\tCurrency string `json:\"currency\"`\n\tAmount int64 `json:\"amount\"`\n\tMemo string `json:\"memo\"`")
	got = decode()
	for _, want := range []string{`account: "acme"`, `amount: 1250`, `memo: "rent"`} {
		if !strings.Contains(got, want) {
			t.Errorf("decoded with the .proto of memo restored, the old request lacks %s:\n%s", want, got)
		}
	}
}
