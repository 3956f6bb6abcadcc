package gen

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// weird is an HTTP-only service (no //warren:grpc): Odd's request and
// OddOut's response have the fields given; both reach Shared.
func weird(fields, extra string) map[string][]byte {
	return map[string][]byte{"odd.go": []byte(`package weird

import (
	"context"
	"net/netip"
	"time"
	"unsafe"
)

type Service interface {
	Odd(ctx context.Context, req OddRequest) (OddResponse, error)
	OddOut(ctx context.Context, req OddOutRequest) (OddOutResponse, error)
	//warren:http GET /odd/{id}
	OddGet(ctx context.Context, req OddGetRequest) (OddOutResponse, error)
}

type OddRequest struct {
	N int ` + "`json:\"n\"`" + `
` + fields + `
}

type OddResponse struct{}

type OddOutRequest struct {
	N int ` + "`json:\"n\"`" + `
}

type OddOutResponse struct {
	N      int    ` + "`json:\"n\"`" + `
	Shared Shared ` + "`json:\"shared\"`" + `
}

type OddGetRequest struct {
	ID string ` + "`json:\"id\"`" + `
}

type Shared struct {
	Name string ` + "`json:\"name\"`" + `
}

var (
	_ netip.Addr
	_ time.Time
	_ unsafe.Pointer
)

` + extra + "\n")}
}

// TestHTTP_FieldsJSONCannotCarryAreRefused: a field of a type
// encoding/json can never encode (a channel, a function, a complex
// number, a map keyed by anything but a string, an integer or a
// TextMarshaler) made every call of an HTTP-only service fail at run time,
// or answer zeros (report j53c 6). svcgen refuses it before writing
// anything, naming file:line, the method(s) and the field, as it does for
// what protobuf cannot carry.
func TestHTTP_FieldsJSONCannotCarryAreRefused(t *testing.T) {
	for _, c := range []struct {
		name, fields, extra string
		want                string // the whole problem line
	}{
		{"chan", "Ch chan int `json:\"ch\"`", "",
			"services/weird/odd.go:19: Odd: field OddRequest.Ch has type chan int, which JSON cannot carry: encoding/json cannot encode channels or functions"},
		{"func", "F func() error", "",
			"services/weird/odd.go:19: Odd: field OddRequest.F has type func() error, which JSON cannot carry: encoding/json cannot encode channels or functions"},
		{"complex64", "C complex64 `json:\"c\"`", "",
			"services/weird/odd.go:19: Odd: field OddRequest.C has type complex64, which JSON cannot carry: encoding/json has no complex numbers"},
		{"complex128 in a slice", "C []complex128 `json:\"c\"`", "",
			"services/weird/odd.go:19: Odd: field OddRequest.C has type []complex128, which JSON cannot carry: encoding/json has no complex numbers"},
		{"struct key", "ByKey map[Key]string `json:\"by_key\"`", "type Key struct{ A, B int }",
			"services/weird/odd.go:19: Odd: field OddRequest.ByKey has type map[Key]string, which JSON cannot carry: a map key must be a string, an integer or an encoding.TextMarshaler, and Key is none"},
		{"float key", "M map[float64]int `json:\"m\"`", "",
			"services/weird/odd.go:19: Odd: field OddRequest.M has type map[float64]int, which JSON cannot carry: a map key must be a string, an integer or an encoding.TextMarshaler, and float64 is none"},
		{"bool key behind a name", "M map[Flag]int `json:\"m\"`", "type Flag bool",
			"and Flag is none"},
		{"key with MarshalJSON only", "M map[Key]int `json:\"m\"`", "type Key struct{ A int }\n\nfunc (Key) MarshalJSON() ([]byte, error) { return nil, nil }",
			"and Key is none"},
		{"array key", "M map[[2]int]int `json:\"m\"`", "",
			"and [2]int is none"},
		{"interface key", "M map[any]int `json:\"m\"`", "",
			"and any is none"},
		{"chan map value", "M map[string]chan int `json:\"m\"`", "",
			"field OddRequest.M has type map[string]chan int, which JSON cannot carry: encoding/json cannot encode channels"},
		{"pointer to chan", "P *chan int `json:\"p\"`", "",
			"field OddRequest.P has type *chan int, which JSON cannot carry"},
		{"named func type", "H Handler `json:\"h\"`", "type Handler func(int)",
			"services/weird/odd.go:19: Odd: field OddRequest.H has type Handler, which JSON cannot carry: Handler is func(int); encoding/json cannot encode channels or functions"},
		{"two fields of one named type", "H Handler `json:\"h\"`\nG Handler `json:\"g\"`", "type Handler func(int)",
			"services/weird/odd.go:20: Odd: field OddRequest.G has type Handler"},
		{"anonymous struct", "In struct{ Ch chan int } `json:\"in\"`", "",
			"field OddRequest.In has type struct{Ch chan int}, which JSON cannot carry: its field Ch has type chan int; encoding/json cannot encode channels"},
		{"unsafe.Pointer", "P unsafe.Pointer `json:\"p\"`", "",
			"field OddRequest.P has type unsafe.Pointer, which JSON cannot carry: encoding/json cannot encode unsafe.Pointer"},
		{"embedded non-struct", "Handler", "type Handler func(int)",
			"services/weird/odd.go:19: Odd: field OddRequest.Handler has type Handler, which JSON cannot carry"},
		// In a struct type of the package: reported at its own field,
		// naming every method that reaches it, once.
		{"in a nested type two methods reach", "S Shared `json:\"s\"`", "type X struct{}",
			"REPLACE"},
		{"in a promoted struct", "Inner", "type Inner struct {\n\tCh chan int `json:\"ch\"`\n}",
			"Odd: field Inner.Ch has type chan int, which JSON cannot carry"},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := weird(c.fields, c.extra)
			if c.want == "REPLACE" { // Shared gets a chan field
				files["odd.go"] = []byte(strings.Replace(string(files["odd.go"]), "type Shared struct {\n", "type Shared struct {\n\tDone chan bool `json:\"done\"`\n", 1))
				c.want = "services/weird/odd.go:38: Odd, OddOut, OddGet: field Shared.Done has type chan bool, which JSON cannot carry"
			}
			out, err := Generate("services/weird", "weird", module, files, nil)
			var probs Problems
			if !errors.As(err, &probs) || out != nil {
				t.Fatalf("Generate = output %v, err %v; want problems and nothing to write", out != nil, err)
			}
			found := 0
			for _, p := range probs {
				if strings.Contains(p.String(), c.want) {
					found++
				}
			}
			if found != 1 {
				t.Fatalf("problems:\n%v\nwant one line containing %q", err, c.want)
			}
		})
	}
}

// TestHTTP_FieldsJSONCanCarryAreAccepted: what encoding/json carries is
// not refused: a type with its own MarshalJSON/UnmarshalJSON or
// MarshalText/UnmarshalText whatever it holds, fields JSON skips (json:"-",
// unexported), map keys of string and integer types and TextMarshalers,
// interfaces, other packages' types; and a GET request's fields, which
// travel in the query string (checked there), are not checked twice.
func TestHTTP_FieldsJSONCanCarryAreAccepted(t *testing.T) {
	for _, c := range []struct{ name, fields, extra string }{
		{"skipped chan", "Ch chan int `json:\"-\"`\nch chan int", ""},
		{"only json:\"-\" fields (left out on purpose)", "O Own `json:\"o\"`", "type Own struct {\n\tA int `json:\"-\"`\n\tb int `json:\"-\"`\n}"},
		// A value receiver: a pointer one is skipped on a value (jsonvalue_test.go).
		{"own MarshalJSON", "W Wrapped `json:\"w\"`", "type Wrapped struct{ Ch chan int }\n\nfunc (w Wrapped) MarshalJSON() ([]byte, error) { return []byte(`null`), nil }"},
		{"own MarshalJSON on the pointer, behind a pointer", "W *Wrapped `json:\"w\"`", "type Wrapped struct{ Ch chan int }\n\nfunc (w *Wrapped) MarshalJSON() ([]byte, error) { return []byte(`null`), nil }"},
		{"own UnmarshalJSON", "W Wrapped `json:\"w\"`", "type Wrapped func()\n\nfunc (w *Wrapped) UnmarshalJSON([]byte) error { return nil }"},
		{"own MarshalText", "W Wrapped `json:\"w\"`", "type Wrapped complex128\n\nfunc (w Wrapped) MarshalText() ([]byte, error) { return nil, nil }"},
		// The embedded value alone travels (beside it only fields JSON
		// skips); an exported Ch would be lost (jsonvalue_test.go).
		{"promoted MarshalJSON", "W Outer `json:\"w\"`", "type Outer struct {\n\tWrapped\n\tch chan int\n}\n\ntype Wrapped struct{}\n\nfunc (Wrapped) MarshalJSON() ([]byte, error) { return nil, nil }"},
		{"embedded time.Time", "W Outer `json:\"w\"`", "type Outer struct {\n\ttime.Time\n\tCh chan int `json:\"-\"`\n}"},
		{"text key", "M map[Key]int `json:\"m\"`", "type Key struct{ A, B int }\n\nfunc (k Key) MarshalText() ([]byte, error) { return nil, nil }\n\nfunc (k *Key) UnmarshalText([]byte) error { return nil }"},
		{"string key with pointer MarshalText", "M map[SKey]int `json:\"m\"`", "type SKey string\n\nfunc (k *SKey) MarshalText() ([]byte, error) { return nil, nil }"},
		{"alias of a text key", "M map[AKey]int `json:\"m\"`", "type AKey = Key\n\ntype Key struct{ A int }\n\nfunc (k Key) MarshalText() ([]byte, error) { return nil, nil }\n\nfunc (k *Key) UnmarshalText([]byte) error { return nil }"},
		{"scalar keys", "A map[string]int `json:\"a\"`\nB map[int64]int `json:\"b\"`\nC map[ID]int `json:\"c\"`\nD map[uint8][]string `json:\"d\"`", "type ID string"},
		{"another package's key", "M map[netip.Addr]int `json:\"m\"`", ""},
		{"interfaces", "A any `json:\"a\"`\nE error `json:\"e\"`\nM map[string]any `json:\"m\"`", ""},
		{"other packages", "T time.Time `json:\"t\"`\nD time.Duration `json:\"d\"`\nP *netip.Prefix `json:\"p\"`", ""},
		{"recursive", "L List `json:\"l\"`\nT *Tree `json:\"t\"`", "type List []List\n\ntype Tree struct {\n\tKids []*Tree `json:\"kids\"`\n}"},
		{"generic", "P Page[Shared] `json:\"p\"`", "type Page[T any] struct {\n\tItems []T `json:\"items\"`\n}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Generate("services/weird", "weird", module, weird(c.fields, c.extra), nil); err != nil {
				t.Fatalf("Generate: %v", err)
			}
		})
	}
	// A GET request's field the query string cannot carry is refused by
	// the route's own check, once.
	files := weird("", "")
	files["odd.go"] = []byte(strings.Replace(string(files["odd.go"]), "type OddGetRequest struct {\n", "type OddGetRequest struct {\n\tCh chan int `json:\"ch\"`\n", 1))
	_, err := Generate("services/weird", "weird", module, files, nil)
	if err == nil || strings.Count(err.Error(), "OddGetRequest.Ch") != 1 || !strings.Contains(err.Error(), "cannot travel in a query string") {
		t.Fatalf("GET request with a chan: %v; want the query string's problem, once", err)
	}
}

// TestHTTP_GRPCServiceNamesAFieldOnce: a //warren:grpc service's field
// that neither JSON nor protobuf can carry is reported once, by the gRPC
// mapping.
func TestHTTP_GRPCServiceNamesAFieldOnce(t *testing.T) {
	_, err := Generate("services/things", "things", module, grpcThings("Ch chan int `json:\"ch\"`", ""), nil)
	if err == nil || strings.Count(err.Error(), "Thing.Ch") != 1 || !strings.Contains(err.Error(), "which svcgen cannot map to protobuf") {
		t.Fatalf("err = %v; want the protobuf mapping's problem alone", err)
	}
}

// Map key types with text methods, as the key cases below declare them
// in the service: encoding/json's own verdict on each is checked beside
// svcgen's, so the check follows encoding/json's rule, not a guess of it.
type (
	ptrMarshalKey    struct{ A string } // MarshalText on *T (report r54b G1)
	marshalOnlyKey   struct{ A string }
	unmarshalOnlyKey struct{ A string }
	textKey          struct{ A string }
	strPtrMarshalKey string
)

func (k *ptrMarshalKey) MarshalText() ([]byte, error)    { return []byte(k.A), nil }
func (k *ptrMarshalKey) UnmarshalText(b []byte) error    { k.A = string(b); return nil }
func (k marshalOnlyKey) MarshalText() ([]byte, error)    { return []byte(k.A), nil }
func (k *unmarshalOnlyKey) UnmarshalText(b []byte) error { k.A = string(b); return nil }
func (k textKey) MarshalText() ([]byte, error)           { return []byte(k.A), nil }
func (k *textKey) UnmarshalText(b []byte) error          { k.A = string(b); return nil }
func (k *strPtrMarshalKey) MarshalText() ([]byte, error) { return []byte(*k), nil }

// roundTrip sends m through encoding/json and back into a map of its type.
func roundTrip[K comparable](m map[K]int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	back := map[K]int{}
	return json.Unmarshal(b, &back)
}

// TestHTTP_MapKeysFollowEncodingJSONsRule: a map key of neither a string
// nor an integer kind travels only through MarshalText on the key's value
// and UnmarshalText on a pointer to it. A key whose MarshalText has a
// pointer receiver was accepted and every call failed (json: unsupported
// type, even with the map nil: report r54b G1); so did a key with one of
// the two methods only, and a pointer key (never read back). Each is
// refused, saying which method to give which receiver.
func TestHTTP_MapKeysFollowEncodingJSONsRule(t *testing.T) {
	const marshalPtr = "\n\nfunc (k *PKey) MarshalText() ([]byte, error) { return []byte(k.A), nil }"
	const unmarshalPtr = "\n\nfunc (k *PKey) UnmarshalText(b []byte) error { k.A = string(b); return nil }"
	const marshalVal = "\n\nfunc (k PKey) MarshalText() ([]byte, error) { return []byte(k.A), nil }"
	for _, c := range []struct {
		name, field, extra string
		json               error  // encoding/json's verdict on the same key
		want               string // "" when svcgen accepts it
	}{
		{"pointer-receiver MarshalText", "ByKey map[PKey]string `json:\"by_key\"`", "type PKey struct{ A string }" + marshalPtr + unmarshalPtr,
			roundTrip(map[ptrMarshalKey]int{{"x"}: 1}),
			"services/weird/odd.go:19: Odd: field OddRequest.ByKey has type map[PKey]string, which JSON cannot carry: PKey's MarshalText has a pointer receiver (services/weird/odd.go:49), " +
				"and encoding/json calls a map key's MarshalText only on the key's value, so it cannot write this map at all (json: unsupported type), even nil; give MarshalText a value receiver: func (k PKey) MarshalText() ([]byte, error)"},
		{"MarshalText only", "ByKey map[PKey]string `json:\"by_key\"`", "type PKey struct{ A string }" + marshalVal,
			roundTrip(map[marshalOnlyKey]int{{"x"}: 1}),
			"PKey has MarshalText but no UnmarshalText, so encoding/json can write this map but not read it back; give *PKey an UnmarshalText([]byte) error"},
		{"UnmarshalText only", "ByKey map[PKey]string `json:\"by_key\"`", "type PKey struct{ A string }" + unmarshalPtr,
			roundTrip(map[unmarshalOnlyKey]int{{"x"}: 1}),
			"PKey has UnmarshalText but no MarshalText, so encoding/json cannot write it as a map key; give it one with a value receiver: func (k PKey) MarshalText() ([]byte, error)"},
		{"pointer key", "ByKey map[*PKey]string `json:\"by_key\"`", "type PKey struct{ A string }" + marshalPtr + unmarshalPtr,
			roundTrip(map[*ptrMarshalKey]int{{"x"}: 1}),
			"encoding/json can write a pointer map key (through MarshalText) but never read one back, so every call that sends the map non-nil fails; key the map by PKey itself"},
		{"value MarshalText, pointer UnmarshalText", "ByKey map[PKey]string `json:\"by_key\"`", "type PKey struct{ A string }" + marshalVal + unmarshalPtr,
			roundTrip(map[textKey]int{{"x"}: 1}), ""},
		{"string kind, pointer MarshalText", "ByKey map[PKey]string `json:\"by_key\"`", "type PKey string" + strings.ReplaceAll(marshalPtr, "k.A", "*k"),
			roundTrip(map[strPtrMarshalKey]int{"x": 1}), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if (c.json == nil) != (c.want == "") {
				t.Fatalf("encoding/json says %v for this key, and the case expects svcgen to refuse it: %v", c.json, c.want != "")
			}
			jsonVerdict(t, weird(c.field, c.extra), c.want)
		})
	}
}

// jsonVerdict generates the weird service from files and checks svcgen's
// verdict: accepted when want is "", else refused with one problem
// containing want and nothing to write.
func jsonVerdict(t *testing.T, files map[string][]byte, want string) {
	t.Helper()
	out, err := Generate("services/weird", "weird", module, files, nil)
	if want == "" {
		if err != nil {
			t.Fatalf("Generate: %v; want it accepted (encoding/json carries it)", err)
		}
		return
	}
	var probs Problems
	if !errors.As(err, &probs) || out != nil {
		t.Fatalf("Generate = output %v, err %v; want problems and nothing to write", out != nil, err)
	}
	if len(probs) != 1 || !strings.Contains(probs[0].String(), want) {
		t.Fatalf("problems:\n%v\nwant one, containing %q", err, want)
	}
}
