package gen

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// grpcThings is a //warren:grpc service whose Thing has the fields given.
func grpcThings(fields, extra string) map[string][]byte {
	return map[string][]byte{"service.go": []byte(`package things

import "context"

//warren:grpc
type Service interface {
	Put(ctx context.Context, req Thing) (Thing, error)
}

type Thing struct {
` + fields + `
}

` + extra + "\n")}
}

// TestGRPC_UnexportedStructFieldTypeIsRefusedNamingTheField: protoc-gen-go
// exports every message type, so a field of an unexported struct type
// (bin) would give grpc_gen.go a thingspb.bin that does not exist; it is
// refused before anything is written, naming the field.
func TestGRPC_UnexportedStructFieldTypeIsRefusedNamingTheField(t *testing.T) {
	for _, c := range []struct{ name, field string }{
		{"value", "Bin bin `json:\"bin\"`"},
		{"pointer", "Bin *bin `json:\"bin\"`"},
		{"slice", "Bin []bin `json:\"bin\"`"},
		{"map of pointers", "Bin map[string]*bin `json:\"bin\"`"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := Generate("services/things", "things", module, grpcThings(c.field, "type bin struct {\n\tCode string `json:\"code\"`\n}"), nil)
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Generate: %v (output %v), want problems", err, out != nil)
			}
			if msg := err.Error(); !strings.Contains(msg, "field Thing.Bin has type") || !strings.Contains(msg, "bin is an unexported struct type") {
				t.Errorf("the problem does not name the field and say why:\n%s", msg)
			}
		})
	}
}

// TestGRPC_FieldNamesFollowProtocGenGo: the Go names grpc_gen.go uses for
// message fields are protoc-gen-go's, which appends "_" to a name whose
// field or getter a field before it (or a method of every message) took.
func TestGRPC_FieldNamesFollowProtocGenGo(t *testing.T) {
	fields := "Message string `json:\"message\"`\n" +
		"GetMessage string `json:\"get_message\"`\n" +
		"GetX string `json:\"get_x\"`\n" +
		"X string `json:\"x\"`\n" +
		"Reset string `json:\"reset\"`\n" +
		"Plain string `json:\"plain\"`"
	out, err := Generate("services/things", "things", module, grpcThings(fields, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	code := string(out.Files["grpc_gen.go"])
	for _, want := range []string{"Message: v.Message,", "GetMessage_: v.GetMessage,", "GetMessage: m.GetGetMessage_(),",
		"GetX: v.GetX,", "X_: v.X,", "X: m.GetX_(),", "Reset_: v.Reset,", "Plain: v.Plain,"} {
		if !strings.Contains(strings.Join(strings.Fields(code), " "), want) {
			t.Errorf("grpc_gen.go lacks %q:\n%s", want, code)
		}
	}
}

// TestGRPC_ProtoReflectFieldIsRefused: protoc-gen-go does not rename a
// field whose Go name is ProtoReflect, the method of every message, so
// its output would not compile; svcgen refuses the field up front.
func TestGRPC_ProtoReflectFieldIsRefused(t *testing.T) {
	_, err := Generate("services/things", "things", module, grpcThings("Reflect string `json:\"protoReflect\"`", ""), nil)
	var probs Problems
	if !errors.As(err, &probs) || !strings.Contains(err.Error(), "field Thing.Reflect: its protobuf field proto_reflect becomes the Go field ProtoReflect") {
		t.Fatalf("Generate: %v, want the field refused", err)
	}
}

// A type svcgen cannot map is named once, with every method that reaches
// it (report j45b: only the first method was named), also through other
// messages (List reaches Part through Thing).
func TestGRPC_AProblemNamesEveryMethodThatReachesItsType(t *testing.T) {
	src := map[string][]byte{"service.go": []byte(`package things

import "context"

//warren:grpc
type Service interface {
	Put(ctx context.Context, req Thing) (Thing, error)
	List(ctx context.Context, req ListRequest) (ListResponse, error)
	Ping(ctx context.Context, req PingRequest) (PingResponse, error)
}

type Thing struct {
	Part Part ` + "`json:\"part\"`" + `
}

type Part struct {
	Bad [3]int ` + "`json:\"bad\"`" + `
}

type ListRequest struct{}

type ListResponse struct {
	Things []Thing ` + "`json:\"things\"`" + `
}

type PingRequest struct{}

type PingResponse struct{}
`)}
	_, err := Generate("services/things", "things", module, src, nil)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Generate: %v, want problems", err)
	}
	var bad []Problem
	for _, p := range probs {
		if strings.Contains(p.Msg, "field Part.Bad") {
			bad = append(bad, p)
		}
	}
	if len(bad) != 1 || bad[0].Method != "Put, List" {
		t.Fatalf("problems of Part.Bad: %+v, want one named for \"Put, List\"\n%s", bad, err)
	}
}

// TestGRPC_GeneratedTestRoundTripsEveryMessage: grpc_gen_test.go, which
// gen rewrites with grpc_gen.go, round-trips every message type (nested
// ones too) through the conversions, so a field added without a gen fails
// `go test` (report j50b 3; the e2e test runs it). It is one of the files
// gen owns, so one the user wrote under that name is not overwritten.
func TestGRPC_GeneratedTestRoundTripsEveryMessage(t *testing.T) {
	files := grpcThings("Part Part `json:\"part\"`", "type Part struct {\n\tN int `json:\"n\"`\n}")
	out, err := Generate("services/things", "things", module, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	code := string(out.Files["grpc_gen_test.go"])
	for _, want := range []string{"// Code generated by svcgen. DO NOT EDIT.", "package things\n", `"github.com/warren-mesh/warren/framework/svcgentest"`,
		"svcgentest.RoundTrip(t, toPBThing, fromPBThing)", "svcgentest.RoundTrip(t, toPBPart, fromPBPart)"} {
		if !strings.Contains(code, want) {
			t.Errorf("grpc_gen_test.go lacks %q:\n%s", want, code)
		}
	}
	files["grpc_gen_test.go"] = []byte("package things\n")
	if _, err := Generate("services/things", "things", module, files, nil); err == nil || !strings.Contains(err.Error(), "grpc_gen_test.go:1: this file does not start with") {
		t.Errorf("a grpc_gen_test.go of the user's: err = %v, want it refused", err)
	}
}

// grpcOwnForm is a //warren:grpc service whose Thing has the fields
// given, and Amount a money type in the style of decimal packages: its
// state unexported, carried over JSON by its own methods.
func grpcOwnForm(fields, extra string) map[string][]byte {
	return map[string][]byte{"service.go": []byte(`package things

import (
	"context"
	"time"
)

//warren:grpc
type Service interface {
	Put(ctx context.Context, req Thing) (Thing, error)
}

type Thing struct {
	ID string ` + "`json:\"id\"`" + `
` + fields + `
}

var _ time.Duration

` + extra + "\n")}
}

const amountJSON = `type Amount struct{ cents int64 }

func (a Amount) MarshalJSON() ([]byte, error) { return nil, nil }

func (a *Amount) UnmarshalJSON(b []byte) error { return nil }`

// TestGRPC_AStructWhoseStateItsOwnMethodsCarryIsRefused: a struct whose
// state is unexported and travels over HTTP through its own MarshalJSON
// (or MarshalText, …) would be a message of its exported fields, so over
// gRPC its value arrived as zero, silently, while HTTP carried it (report
// j53c 10); a struct with fields but none exported would never carry
// anything. Both are refused before anything is written, naming the field
// (value, pointer, slice, map, or the request type itself) and what to do.
func TestGRPC_AStructWhoseStateItsOwnMethodsCarryIsRefused(t *testing.T) {
	for _, c := range []struct{ name, fields, extra, want string }{
		{"MarshalJSON", "Total Amount `json:\"total\"`", amountJSON,
			"field Thing.Total has type Amount, which svcgen cannot map to protobuf: Amount has its own JSON form (MarshalJSON), which protobuf cannot carry, and fields a message leaves out (cents: unexported or json:\"-\"), so over gRPC they would never arrive while HTTP carries them through its own methods; give Amount exported fields that hold its whole state (gRPC carries those; HTTP still uses its methods), or give the field a type protobuf carries (int64, string, …) and convert to Amount in your code"},
		{"pointer", "Total *Amount `json:\"total\"`", amountJSON, "field Thing.Total has type *Amount, which svcgen cannot map to protobuf: Amount has its own JSON form (MarshalJSON)"},
		{"slice", "Totals []Amount `json:\"totals\"`", amountJSON, "field Thing.Totals has type []Amount, which svcgen cannot map to protobuf: Amount has its own JSON form"},
		{"map of pointers", "Totals map[string]*Amount `json:\"totals\"`", amountJSON, "field Thing.Totals has type map[string]*Amount, which svcgen cannot map to protobuf: Amount has its own JSON form"},
		{"UnmarshalJSON alone, on the pointer", "Total Amount `json:\"total\"`",
			"type Amount struct {\n\tCurrency string `json:\"currency\"`\n\tcents int64\n}\n\nfunc (a *Amount) UnmarshalJSON(b []byte) error { return nil }",
			"Amount has its own JSON form (UnmarshalJSON), which protobuf cannot carry, and fields a message leaves out (cents: unexported"},
		{"MarshalText, through an alias", "Total Money `json:\"total\"`",
			"type Money = Amount\n\ntype Amount struct{ cents, scale int64 }\n\nfunc (a Amount) MarshalText() ([]byte, error) { return nil, nil }",
			"field Thing.Total has type Money, which svcgen cannot map to protobuf: Amount has its own text form (MarshalText), which protobuf cannot carry, and fields a message leaves out (cents, scale: "},
		{"json:\"-\" state", "Total Amount `json:\"total\"`",
			"type Amount struct {\n\tCents int64 `json:\"-\"`\n}\n\nfunc (a Amount) MarshalJSON() ([]byte, error) { return nil, nil }",
			"Amount has its own JSON form (MarshalJSON), which protobuf cannot carry, and fields a message leaves out (Cents: unexported or json:\"-\")"},
		{"no exported field", "ID2 Key `json:\"id2\"`", "type Key struct{ hi, lo uint64 }",
			"field Thing.ID2 has type Key, which svcgen cannot map to protobuf: Key has no field a message carries (hi, lo: unexported or json:\"-\"), so its value would never travel over gRPC; export the fields that hold its state, or give the field a type protobuf carries and convert to Key in your code"},
		{"the request type itself", "secret string", "func (t Thing) MarshalJSON() ([]byte, error) { return nil, nil }",
			"type Thing cannot be a gRPC message: Thing has its own JSON form (MarshalJSON), which protobuf cannot carry, and fields a message leaves out (secret: unexported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := Generate("services/things", "things", module, grpcOwnForm(c.fields, c.extra), nil)
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Generate: %v (output %v), want problems", err, out != nil)
			}
			if msg := err.Error(); !strings.Contains(msg, "services/things/service.go:") || !strings.Contains(msg, ": Put: ") || !strings.Contains(msg, c.want) {
				t.Errorf("the problem does not name the field and say why:\n%s\nwant it to contain\n%s", msg, c.want)
			}
		})
	}
}

// TestGRPC_TypesWithTheirOwnFormThatProtobufCarriesWhollyAreMapped: what
// the refusal above must leave alone — time.Time and time.Duration (they
// have MarshalJSON and MarshalText, and travel as well-known types), a
// named scalar with its own text form (an enum: its value is its whole
// state, and the scalar carries it), a struct with its own form whose
// fields are all exported, an empty struct, and a struct with some
// unexported fields and no form of its own (JSON leaves them out too).
func TestGRPC_TypesWithTheirOwnFormThatProtobufCarriesWhollyAreMapped(t *testing.T) {
	fields := "At time.Time `json:\"at\"`\n" +
		"AtP *time.Time `json:\"at_p\"`\n" +
		"Times []time.Time `json:\"times\"`\n" +
		"Took time.Duration `json:\"took\"`\n" +
		"TookP *time.Duration `json:\"took_p\"`\n" +
		"Status Status `json:\"status\"`\n" +
		"StatusP *Status `json:\"status_p\"`\n" +
		"Statuses map[string]Status `json:\"statuses\"`\n" +
		"Money Money `json:\"money\"`\n" +
		"Monies []*Money `json:\"monies\"`\n" +
		"Empty Empty `json:\"empty\"`\n" +
		"Part Part `json:\"part\"`"
	extra := "type Status int\n\nfunc (s Status) MarshalText() ([]byte, error) { return nil, nil }\n\nfunc (s *Status) UnmarshalText(b []byte) error { return nil }\n\n" +
		"type Money struct {\n\tUnits int64 `json:\"units\"`\n\tNanos int32 `json:\"nanos\"`\n\t_ struct{}\n}\n\nfunc (m Money) MarshalJSON() ([]byte, error) { return nil, nil }\n\n" +
		"type Empty struct{}\n\n" +
		"type Part struct {\n\tN int `json:\"n\"`\n\tcache string\n}"
	out, err := Generate("services/things", "things", module, grpcOwnForm(fields, extra), nil)
	if err != nil {
		t.Fatal(err)
	}
	proto := string(out.Files["thingspb/things.proto"])
	for _, want := range []string{"google.protobuf.Timestamp at = ", "repeated google.protobuf.Timestamp times = ", "google.protobuf.Duration took = ",
		"int64 status = ", "optional int64 status_p = ", "map<string, int64> statuses = ", "Money money = ", "repeated Money monies = ",
		"Empty empty = ", "Part part = ", "message Money {\n  int64 units = 1;\n  int32 nanos = 2;\n}"} {
		if !strings.Contains(proto, want) {
			t.Errorf("the .proto lacks %q:\n%s", want, proto)
		}
	}
}

// TestGRPC_AMissingProtoOfAServiceThatHadOneIsRefused: a .proto deleted
// (or NAMEpb/ with it) numbered every field afresh with no word (report
// j53c 9), and so did deleting every generated file, the habit of
// starting afresh (report r54b G2): svcgen's grpc_gen_test.go, which
// `rm *_gen.go` leaves, and the user's own files using the gRPC side (the
// main `svcgen new --grpc` wrote) show the service had one, so gen
// refuses. --renumber numbers afresh on purpose, with a note; so does a
// service with nothing generated and nothing gRPC left. A new service and
// an HTTP service given //warren:grpc get their first .proto silently.
func TestGRPC_AMissingProtoOfAServiceThatHadOneIsRefused(t *testing.T) {
	files := grpcThings("ID string `json:\"id\"`", "")
	first, err := Generate("services/things", "things", module, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The notes about the .proto (the fixture has no `var _ Service` line,
	// which is a note of its own).
	protoNotes := func(notes []string) []string {
		var out []string
		for _, n := range notes {
			if strings.Contains(n, "things.proto") {
				out = append(out, n)
			}
		}
		return out
	}
	if n := protoNotes(first.Notes); len(n) != 0 {
		t.Errorf("a new service's notes: %q; want none", n)
	}
	grpcGen := &fstest.MapFile{Data: first.Files["grpc_gen.go"]}
	grpcGenTest := &fstest.MapFile{Data: first.Files["grpc_gen_test.go"]}
	pbGo := &fstest.MapFile{Data: []byte("// Code generated by protoc-gen-go. DO NOT EDIT.\n\npackage thingspb\n")}
	proto := &fstest.MapFile{Data: first.Files["thingspb/things.proto"]}
	svcGo := &fstest.MapFile{Data: files["service.go"]}
	mainGo := &fstest.MapFile{Data: []byte("package main\n\nfunc main() {\n\treturn things.NewTransports(d, things.MakeEndpoints(things.New()), grpcSettings)\n}\n")}
	httpMain := &fstest.MapFile{Data: []byte("package main\n\nfunc main() {\n\treturn bootstrap.HTTP(things.NewHTTPHandler(things.MakeEndpoints(svc), d.Logger)), nil\n}\n")}
	userTest := &fstest.MapFile{Data: []byte("package things_test\n\nfunc TestX(t *testing.T) { c, _ := things.NewGRPCClient(ctx, d) }\n")}
	const afreshNote = "services/things/thingspb/things.proto: no earlier .proto and no generated file of this service were found, so every field was numbered afresh from 1"
	for _, c := range []struct {
		name     string
		prev     fstest.MapFS
		renumber bool
		refused  string // what shows the service had a .proto; "" for none
		note     string // the start of the one note; "" for none
	}{
		{"the .proto deleted", fstest.MapFS{"grpc_gen.go": grpcGen, "thingspb/things.pb.go": pbGo, "thingspb/things_grpc.pb.go": pbGo}, false,
			"grpc_gen.go, thingspb/things.pb.go, thingspb/things_grpc.pb.go still there", ""},
		{"NAMEpb/ deleted", fstest.MapFS{"grpc_gen.go": grpcGen, "service.go": svcGo}, false, "grpc_gen.go still there", ""},
		{"grpc_gen.go and the .proto deleted", fstest.MapFS{"thingspb/things.pb.go": pbGo}, false, "thingspb/things.pb.go still there", ""},
		{"rm *_gen.go and NAMEpb/", fstest.MapFS{"service.go": svcGo, "grpc_gen_test.go": grpcGenTest, "cmd/things/main.go": mainGo}, false,
			"grpc_gen_test.go still there; cmd/things/main.go calls things.NewTransports", ""},
		{"every generated file deleted, main serves gRPC", fstest.MapFS{"service.go": svcGo, "cmd/things/main.go": mainGo}, false,
			"cmd/things/main.go calls things.NewTransports", ""},
		{"every generated file deleted, a test uses the gRPC client", fstest.MapFS{"service.go": svcGo, "things_test.go": userTest, "cmd/things/main.go": httpMain}, false,
			"things_test.go uses NewGRPCClient", ""},
		{"--renumber", fstest.MapFS{"service.go": svcGo, "grpc_gen_test.go": grpcGenTest, "cmd/things/main.go": mainGo, "thingspb/things.pb.go": pbGo}, true,
			"", "services/things/thingspb/things.proto: --renumber: every field was numbered afresh from 1"},
		{"an empty directory", fstest.MapFS{}, false, "", afreshNote},
		{"an HTTP service made gRPC", fstest.MapFS{"service.go": svcGo, "cmd/things/main.go": httpMain,
			"endpoint_gen.go": {Data: []byte(generatedHeader + "\npackage things\n")}, "transport_gen.go": {Data: []byte(generatedHeader + "\npackage things\n")}}, false, "", ""},
		{"nothing generated nor gRPC left", fstest.MapFS{"service.go": svcGo, "cmd/things/main.go": httpMain}, false, "", afreshNote},
		{"NAMEpb/ without a .pb.go", fstest.MapFS{"thingspb/notes.txt": {Data: []byte("x")}}, false, "", afreshNote},
		{"all there", fstest.MapFS{"grpc_gen.go": grpcGen, "thingspb/things.pb.go": pbGo, "thingspb/things.proto": proto}, false, "", ""},
		{"all there, --renumber", fstest.MapFS{"grpc_gen.go": grpcGen, "thingspb/things.pb.go": pbGo, "thingspb/things.proto": proto}, true, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := GenerateWith("services/things", "things", module, files, c.prev, Options{Renumber: c.renumber})
			if c.refused == "" {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if !bytes.Equal(out.Files["thingspb/things.proto"], proto.Data) {
					t.Errorf("the .proto:\n%s\nwant\n%s", out.Files["thingspb/things.proto"], proto.Data)
				}
				switch notes := protoNotes(out.Notes); {
				case c.note == "" && len(notes) > 0:
					t.Errorf("notes %q; want none", notes)
				case c.note != "" && (len(notes) != 1 || !strings.HasPrefix(notes[0], c.note) ||
					!strings.Contains(notes[0], "restore the file from version control (git checkout -- services/things/thingspb/things.proto)")):
					t.Errorf("notes %q; want one starting %q and saying how to restore the file", notes, c.note)
				}
				return
			}
			var probs Problems
			if !errors.As(err, &probs) || out != nil {
				t.Fatalf("Generate: %v (output %v), want problems and nothing to write", err, out != nil)
			}
			want := "services/things/thingspb/things.proto: this file is missing, but the service had it (" + c.refused + "), and it holds the service's protobuf field numbers: " +
				"numbered afresh, fields would swap meaning on the wire for callers built from the committed .proto; " +
				"restore it from version control (git checkout -- services/things/thingspb/things.proto) and run gen again. " +
				"To number every field afresh on purpose (no caller of an old .proto left, or the service never had one), run gen --renumber"
			if err.Error() != want {
				t.Errorf("problem:\n%s\nwant\n%s", err, want)
			}
		})
	}
}

// TestGRPC_GeneratedCodeLeftBehindWithoutTheLineIsRefused: with the
// //warren:grpc line deleted, or parted from `type Service` by a blank
// line, the gRPC code gen wrote before would stay as it was and be
// served out of step with the interface while gen said "up to date"
// (report r54b G4); gen refuses, writing nothing, and says both ways out.
func TestGRPC_GeneratedCodeLeftBehindWithoutTheLineIsRefused(t *testing.T) {
	files := grpcThings("ID string `json:\"id\"`", "")
	first, err := Generate("services/things", "things", module, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := string(files["service.go"])
	for name, edited := range map[string]string{
		"line deleted":           strings.Replace(src, "//warren:grpc\n", "", 1),
		"parted by a blank line": strings.Replace(src, "//warren:grpc\n", "//warren:grpc\n\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			fs := map[string][]byte{"service.go": []byte(edited), "grpc_gen.go": first.Files["grpc_gen.go"]}
			out, err := Generate("services/things", "things", module, fs, nil)
			var probs Problems
			if !errors.As(err, &probs) || out != nil {
				t.Fatalf("Generate: %v (output %v), want a problem and nothing to write", err, out != nil)
			}
			want := "services/things/grpc_gen.go:1: svcgen generated this gRPC code before, but the Service interface has no //warren:grpc line now"
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "delete services/things/grpc_gen.go, services/things/grpc_gen_test.go and services/things/thingspb/") {
				t.Errorf("problem:\n%s\nwant it to start %q and name what to delete", err, want)
			}
			// Without the old gRPC code it is an HTTP service like any.
			if _, err := Generate("services/things", "things", module, map[string][]byte{"service.go": []byte(edited)}, nil); err != nil {
				t.Errorf("the same service.go with no grpc_gen.go: %v", err)
			}
		})
	}
}

// TestGRPC_AnAliasIsTheTypeItNames: type Stamp = time.Time is time.Time
// (the same type, as docs/svcgen.md recommends it over HTTP), but the
// protobuf mapping read the alias as a named type and refused it, "Stamp
// is a named time.Time type" (report r55b F4). Each alias is mapped as the
// type it names — a time, an integer, a struct of the package (the same
// message, not a second one), behind a pointer, in a slice, as a map key —
// reading the target in the file that declares the alias (its imports);
// a new named type over the same target is still refused.
func TestGRPC_AnAliasIsTheTypeItNames(t *testing.T) {
	fields := "At Stamp `json:\"at\"`\n" +
		"AtP *Stamp `json:\"at_p\"`\n" +
		"Ats []Stamp `json:\"ats\"`\n" +
		"Price Cents `json:\"price\"`\n" +
		"PriceP *Cents `json:\"price_p\"`\n" +
		"Part PartAlias `json:\"part\"`\n" +
		"PartP *PartAlias `json:\"part_p\"`\n" +
		"Parts []*PartAlias `json:\"parts\"`\n" +
		"ByKey map[Key]Cents `json:\"by_key\"`\n" +
		"Wait Wait `json:\"wait\"`"
	files := grpcThings(fields, "type Part struct {\n\tN int `json:\"n\"`\n}")
	files["aliases.go"] = []byte("package things\n\nimport tm \"time\"\n\ntype (\n\tStamp     = tm.Time\n\tWait      = tm.Duration\n\tCents     = Units\n\tUnits     = int64\n\tPartAlias = Part\n\tKey       = string\n)\n")
	out, err := Generate("services/things", "things", module, files, nil)
	if err != nil {
		t.Fatalf("Generate: %v; want every alias mapped as the type it names", err)
	}
	proto := string(out.Files["thingspb/things.proto"])
	for _, want := range []string{"google.protobuf.Timestamp at = 1;", "google.protobuf.Timestamp at_p = 2;", "repeated google.protobuf.Timestamp ats = 3;",
		"int64 price = 4;", "optional int64 price_p = 5;", "Part part = 6;", "Part part_p = 7;", "repeated Part parts = 8;", "map<string, int64> by_key = 9;",
		"google.protobuf.Duration wait = 10;"} {
		if !strings.Contains(proto, want) {
			t.Errorf("the .proto lacks %q:\n%s", want, proto)
		}
	}
	if strings.Contains(proto, "message PartAlias") {
		t.Errorf("the alias got a message of its own:\n%s", proto)
	}
	code := string(out.Files["grpc_gen.go"])
	for _, want := range []string{" grpctransport.TimeToPB(v.At),", " toPBPart(v.Part),", " grpctransport.DurationToPB(v.Wait),", "func toPBPart(v Part) *thingspb.Part"} {
		if !strings.Contains(code, want) {
			t.Errorf("grpc_gen.go lacks %q", want)
		}
	}

	_, err = Generate("services/things", "things", module, grpcThings("At Stamp `json:\"at\"`", "type Stamp time.Time"), nil)
	if err == nil || !strings.Contains(err.Error(), "Stamp is a named time.Time type") {
		t.Errorf("a named type over time.Time: err = %v; want it refused", err)
	}
}

// TestGRPC_NamedSlicesAndMapsAreTheirUnderlyingType: type Labels
// map[string]string and type IDs []int64 were refused ("use
// map[string]string itself") though protobuf carries them exactly, and a
// named type over json.RawMessage or url.Values was told to use that type
// itself, which the mapping then refused as a type of another package
// (report r55b F5). A named slice or map of what the mapping carries is
// the field its underlying type is (testdata/grpckinds carries them
// through protoc and back); one of what it does not says why; a named
// type of another package's is told to use a type protobuf carries.
func TestGRPC_NamedSlicesAndMapsAreTheirUnderlyingType(t *testing.T) {
	fields := "Labels Labels `json:\"labels\"`\n" +
		"IDs IDs `json:\"ids\"`\n" +
		"Parts Parts `json:\"parts\"`\n" +
		"Blob Blob `json:\"blob\"`\n" +
		"Blobs map[string]Blob `json:\"blobs\"`"
	extra := "type Labels map[string]string\n\ntype IDs []int64\n\ntype Parts []*Part\n\ntype Blob []byte\n\ntype Part struct {\n\tN int `json:\"n\"`\n}"
	out, err := Generate("services/things", "things", module, grpcThings(fields, extra), nil)
	if err != nil {
		t.Fatalf("Generate: %v; want named slices and maps mapped as their underlying types", err)
	}
	proto := string(out.Files["thingspb/things.proto"])
	for _, want := range []string{"map<string, string> labels = 1;", "repeated int64 ids = 2;", "repeated Part parts = 3;", "bytes blob = 4;", "map<string, bytes> blobs = 5;"} {
		if !strings.Contains(proto, want) {
			t.Errorf("the .proto lacks %q:\n%s", want, proto)
		}
	}

	for _, c := range []struct{ name, field, extra, want, not string }{
		{"json.RawMessage", "Body Body `json:\"body\"`", "type Body json.RawMessage",
			"field Thing.Body has type Body, which svcgen cannot map to protobuf: Body is a named json.RawMessage type, and protobuf carries no type of another package but time.Time and time.Duration; give the field a type it carries ([]byte, string, map[string]string, a struct type of this package, …) and convert to Body in your code",
			"use json.RawMessage itself"},
		{"url.Values", "Query Query `json:\"query\"`", "type Query url.Values", "Query is a named url.Values type, and protobuf carries no type of another package", "use url.Values itself"},
		{"time.Duration", "Wait Timeout `json:\"wait\"`", "type Timeout time.Duration", "Timeout is a named time.Duration type; use time.Duration itself in the field", ""},
		{"a map protobuf does not carry", "ByN ByN `json:\"by_n\"`", "type ByN map[int]string", "ByN is a named map[int]string type: map keys must be string", ""},
		{"an array", "Grid Grid `json:\"grid\"`", "type Grid [3]int", "Grid is a named [3]int type: arrays have no protobuf counterpart; use a slice", ""},
		{"a slice of slices", "M Matrix `json:\"m\"`", "type Matrix [][]int", "Matrix is a named [][]int type: a slice inside a slice or map has no protobuf counterpart", ""},
		{"a pointer to a named map", "L *Labels `json:\"l\"`", "type Labels map[string]string", "pointers are mapped to scalars, time.Time, time.Duration and struct types of this package", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := grpcThings(c.field, c.extra)
			files["service.go"] = []byte(strings.Replace(string(files["service.go"]), `import "context"`, "import (\n\t\"context\"\n\t\"encoding/json\"\n\t\"net/url\"\n\t\"time\"\n)", 1))
			_, err := Generate("services/things", "things", module, files, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.not != "" && strings.Contains(err.Error(), c.not)) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}
