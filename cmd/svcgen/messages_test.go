package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/messages/*.golden from the current output")

// badService has one of each signature and route mistake, out of line
// order in the interface, so the golden output shows them sorted.
const badService = `package payment

import "context"

type Service interface {
	//warren:http POST /x
	A(ctx context.Context, req Req) (Resp, error)
	//warren:http GET /a/{id}
	B(ctx context.Context, req Req) (Resp, error)
	//warren:http POST /x
	C(ctx context.Context, req Req) (Resp, error)
	D(req Req) (Resp, error)
	E(req Req, ctx context.Context) (Resp, error)
	//warren:http GET /{id}/b
	F(ctx context.Context, req Req) (Resp, error)
}

type Req struct {
	ID string ` + "`json:\"id\"`" + `
}

type Resp struct{}
`

// badGRPCService serves gRPC with fields protobuf has no counterpart for,
// a //warren:grpc line on a method and an embedded struct: each is
// reported with the method and the field.
const badGRPCService = `package ledger

import (
	"context"
	"time"
)

// Service is the ledger.
//
//warren:grpc
type Service interface {
	//warren:grpc
	Post(ctx context.Context, req PostRequest) (PostResponse, error)
	Get(ctx context.Context, req GetRequest) (Entry, error)
}

type PostRequest struct {
	Amount complex128
	Tags   map[int]string
	Meta   any
	Matrix [][]int
	Refs   []*string
	Month  time.Month
	Inline struct{ A int }
	Base
}

type Base struct{ ID string }

type PostResponse struct {
	Entry Entry
}

type GetRequest struct {
	ID string ` + "`json:\"id\"`" + `
}

type Entry struct {
	ID     string    ` + "`json:\"id\"`" + `
	At     time.Time ` + "`json:\"at\"`" + `
	Parent *Entry    ` + "`json:\"parent\"`" + `
	Done   chan bool ` + "`json:\"done\"`" + `
}
`

// TestMessages_Golden pins what svcgen prints for the cases the issue
// named: help printed once, problems sorted by line with singular nouns,
// one error for swapped parameters, route conflicts without panic text or
// svcgen's source paths, names that are not DNS labels refused.
// -update rewrites the golden files.
func TestMessages_Golden(t *testing.T) {
	root := fakeRoot(t)
	os.MkdirAll(filepath.Join(root, "services", "payment"), 0o755)
	os.WriteFile(filepath.Join(root, "services", "payment", "service.go"), []byte(badService), 0o644)
	os.MkdirAll(filepath.Join(root, "services", "ledger"), 0o755)
	os.WriteFile(filepath.Join(root, "services", "ledger", "service.go"), []byte(badGRPCService), 0o644)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"new-help", []string{"new", "--help"}},
		{"help-gen", []string{"help", "gen"}},
		{"gen-problems", []string{"gen", "payment", "--root", root}},
		{"gen-grpc-problems", []string{"gen", "ledger", "--root", root}},
		{"new-trailing-dash", []string{"new", "my-", "--root", root}},
		{"new-double-dash", []string{"new", "a--b", "--root", root}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.args...)
			got := []byte("$ svcgen " + strings.ReplaceAll(strings.Join(c.args, " "), root, "ROOT") + "\n" + out + errOut + "exit " + strconv.Itoa(code) + "\n")
			got = bytes.ReplaceAll(got, []byte(root), []byte("ROOT"))
			for _, leak := range []string{"panic", "registered at", ".go:0", "cmd/svcgen/"} {
				if bytes.Contains(got, []byte(leak)) {
					t.Errorf("output contains %q:\n%s", leak, got)
				}
			}
			path := filepath.Join("testdata", "messages", c.name+".golden")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/svcgen -run TestMessages_Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (rerun with -update and review the diff):\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}
