package gen

import (
	"strings"
	"testing"
	"testing/fstest"
)

// documented is a gRPC service whose methods, types and fields have doc
// comments (some trailing, some in a grouped declaration), with a named
// string type that has constants; FIELDS is the rest of OpenRequest.
const documented = `package acct

import "context"

// Service is the account API.
//
//warren:grpc
type Service interface {
	// Open opens an account for an owner.
	//
	// A second call for the same owner answers the same account.
	//warren:idempotent
	Open(ctx context.Context, req OpenRequest) (OpenResponse, error)
	Shut(ctx context.Context, req OpenResponse) (OpenResponse, error) // Shut closes it.
}

// OpenRequest is the input of Open.
type OpenRequest struct {
	// Owner is who owns the account.
	Owner  string ` + "`json:\"owner\"`" + `
	Status Status ` + "`json:\"status\"`" + ` // Status is the state to open in.
	Past   []Status ` + "`json:\"past\"`" + `
FIELDS
}

// Status is an account's state.
type Status string

const (
	StatusOpen   Status = "open"
	StatusClosed Status = "closed"
	statusFrozen        = Status("frozen")
	other               = "not a Status"
)

type (
	// OpenResponse is what Open answers.
	OpenResponse struct {
		ID string ` + "`json:\"id\"`" + `
	}
)
`

func genDocumented(t *testing.T, fields string, prev []byte) (string, []string) {
	t.Helper()
	fs := fstest.MapFS{}
	if prev != nil {
		fs[acctProto] = &fstest.MapFile{Data: prev}
	}
	src := strings.Replace(documented, "FIELDS", fields, 1)
	out, err := Generate("services/acct", "acct", module, map[string][]byte{"service.go": []byte(src)}, fs)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, n := range out.Notes {
		if strings.HasPrefix(n, "services/acct/"+acctProto+": ") {
			notes = append(notes, n)
		}
	}
	return string(out.Files[acctProto]), notes
}

// TestProto_CarriesTheDocComments: the doc comments of the Service
// methods (a trailing one too, never the //warren: lines), of the message
// types (also in a grouped declaration) and of their fields are leading
// comments in the .proto — protoc attaches them to the rpc, message and
// field (read back from its source info), which is how it carries them
// into other languages' stubs — and a field of a named string type with
// constants lists their values. A second run changes nothing, and the
// comments do not disturb the numbering: fields moved keep their numbers.
// (Report j53c finding 8.)
func TestProto_CarriesTheDocComments(t *testing.T) {
	proto, _ := genDocumented(t, "\t// N counts.\n\tN int `json:\"n\"`", nil)
	for _, want := range []string{
		"service AcctService {\n" +
			"  // Open opens an account for an owner.\n  //\n  // A second call for the same owner answers the same account.\n" +
			"  rpc Open(OpenRequest) returns (OpenResponse) {\n" +
			"    option idempotency_level = IDEMPOTENT;\n  }\n" +
			"  // Shut closes it.\n  rpc Shut(OpenResponse) returns (OpenResponse);\n}",
		"\n\n// OpenRequest is the input of Open.\nmessage OpenRequest {\n" +
			"  // Owner is who owns the account.\n  string owner = 1;\n" +
			"  // Status is the state to open in.\n" +
			"  // Values: \"open\", \"closed\", \"frozen\" (the constants of Go type Status).\n  string status = 2;\n" +
			"  // Values: \"open\", \"closed\", \"frozen\" (the constants of Go type Status).\n  repeated string past = 3;\n" +
			"  // N counts.\n  int64 n = 4;\n}",
		"\n\n// OpenResponse is what Open answers.\nmessage OpenResponse {\n  string id = 1;\n}",
	} {
		if !strings.Contains(proto, want) {
			t.Errorf("the .proto lacks\n%s\n---- it is:\n%s", want, proto)
		}
	}
	if strings.Contains(proto, "warren:") {
		t.Errorf("a //warren: line is in the .proto:\n%s", proto)
	}

	leading := func(name string) string {
		t.Helper()
		d := compileProto(t, proto, name)
		return d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments
	}
	for name, want := range map[string]string{
		"acct.v1.AcctService.Open":  " Open opens an account for an owner.\n\n A second call for the same owner answers the same account.\n",
		"acct.v1.AcctService.Shut":  " Shut closes it.\n",
		"acct.v1.OpenRequest":       " OpenRequest is the input of Open.\n",
		"acct.v1.OpenRequest.owner": " Owner is who owns the account.\n",
		"acct.v1.OpenRequest.status": " Status is the state to open in.\n" +
			" Values: \"open\", \"closed\", \"frozen\" (the constants of Go type Status).\n",
		"acct.v1.OpenResponse": " OpenResponse is what Open answers.\n",
	} {
		if got := leading(name); got != want {
			t.Errorf("protoc's leading comment of %s is %q, want %q", name, got, want)
		}
	}

	again, _ := genDocumented(t, "\t// N counts.\n\tN int `json:\"n\"`", []byte(proto))
	if again != proto {
		t.Fatalf("a second run changes the .proto:\n%s", lineDiff([]byte(proto), []byte(again)))
	}
	// The numbers are read back past the comments: n removed is reserved
	// as what it was, the others keep theirs.
	moved, notes := genDocumented(t, "", []byte(proto))
	moved2, _ := genDocumented(t, "", []byte(moved))
	if moved != moved2 || len(notes) != 0 || !strings.Contains(moved, "reserved 4; // was int64 n") ||
		!strings.Contains(moved, "  string owner = 1;") || !strings.Contains(moved, "  repeated string past = 3;") {
		t.Errorf("without n (notes %q), the .proto is\n%s", notes, moved)
	}
}

// TestProto_TheDocOfATypeGenAppendsIsTheSameOnTheNextRun: a request and a
// response type gen appends to service.go get stub.go.tmpl's doc comment
// there; the .proto written in the same run carries that comment, so the
// next run, which reads it from service.go, changes nothing.
func TestProto_TheDocOfATypeGenAppendsIsTheSameOnTheNextRun(t *testing.T) {
	src := "package acct\n\nimport \"context\"\n\n//warren:grpc\ntype Service interface {\n\t// Post posts.\n\tPost(ctx context.Context, req PostRequest) (PostResponse, error)\n}\n"
	first, err := Generate("services/acct", "acct", module, map[string][]byte{"service.go": []byte(src)}, fstest.MapFS{})
	if err != nil {
		t.Fatal(err)
	}
	proto, appended := first.Files[acctProto], first.Files["service.go"]
	if !strings.Contains(string(appended), "type PostRequest struct") {
		t.Fatalf("gen appended no PostRequest:\n%s", appended)
	}
	for _, want := range []string{
		"// PostRequest is the input of Post. svcgen added it because no\n// type of that name existed; add the fields you need.\nmessage PostRequest {",
		"// PostResponse is the output of Post. svcgen added it because no\n// type of that name existed; add the fields you need.\nmessage PostResponse {",
	} {
		if !strings.Contains(string(proto), want) {
			t.Errorf("the .proto lacks\n%s\n---- it is:\n%s", want, proto)
		}
	}
	second, err := Generate("services/acct", "acct", module, map[string][]byte{"service.go": appended},
		fstest.MapFS{acctProto: &fstest.MapFile{Data: proto}})
	if err != nil {
		t.Fatal(err)
	}
	if got := second.Files[acctProto]; string(got) != string(proto) {
		t.Fatalf("the next run changes the .proto:\n%s", lineDiff(proto, got))
	}
}
