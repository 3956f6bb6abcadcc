package gen

import (
	"encoding/json"
	"math/big"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The types the cases below declare in the service, for encoding/json's
// own verdict on each: the check follows encoding/json, not a guess of it.
type (
	ptrMoney     struct{ cents int64 } // MarshalJSON on *T
	valMoney     struct{ cents int64 } // MarshalJSON on T
	ptrTextMoney struct{ cents int64 } // MarshalText on *T, no MarshalJSON
	moneyLine    struct{ Price ptrMoney }
	moneyMap     struct{ ByName map[string]ptrMoney }
	pricedByVal  struct{ ptrMoney } // promotes MarshalJSON on *pricedByVal only
	opaqueCents  struct{ n int64 }  // no method, no exported field
	stamp        time.Time          // gets none of time.Time's methods
	stampAlias   = time.Time
	promoted     struct{ A int }
	outerOfInner struct{ promoted } // A is promoted: it travels
	bigNum       big.Int
	addrOf4      netip.Addr
)

func (m *ptrMoney) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, m.cents, 10), nil }
func (m *ptrMoney) UnmarshalJSON(b []byte) (err error) {
	m.cents, err = strconv.ParseInt(string(b), 10, 64)
	return
}
func (m valMoney) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, m.cents, 10), nil }
func (m *valMoney) UnmarshalJSON(b []byte) (err error) {
	m.cents, err = strconv.ParseInt(string(b), 10, 64)
	return
}
func (m *ptrTextMoney) MarshalText() ([]byte, error) { return strconv.AppendInt(nil, m.cents, 10), nil }
func (m *ptrTextMoney) UnmarshalText(b []byte) (err error) {
	m.cents, err = strconv.ParseInt(string(b), 10, 64)
	return
}

// survives reports whether v comes back from encoding/json as it was
// sent, handed over as the generated code hands a request or response:
// a value in an any.
func survives[T any](v T) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	var back T
	return json.Unmarshal(b, &back) == nil && reflect.DeepEqual(back, v)
}

// The service's Money types, as ptrMoney, valMoney and ptrTextMoney.
const (
	ptrMoneySrc = "type Money struct{ cents int64 }\n\nfunc (m *Money) MarshalJSON() ([]byte, error) { return nil, nil }\n\nfunc (m *Money) UnmarshalJSON([]byte) error { return nil }"
	valMoneySrc = "type Money struct{ cents int64 }\n\nfunc (m Money) MarshalJSON() ([]byte, error) { return nil, nil }\n\nfunc (m *Money) UnmarshalJSON([]byte) error { return nil }"
	txtMoneySrc = "type Money struct{ cents int64 }\n\nfunc (m *Money) MarshalText() ([]byte, error) { return nil, nil }\n\nfunc (m *Money) UnmarshalText([]byte) error { return nil }"
)

// TestHTTP_ValuesJSONWouldLoseAreRefused: encoding/json calls a
// MarshalJSON (or MarshalText) with a pointer receiver only on a value it
// can address, and the generated code hands it requests and responses as
// values, so such a type used as a value (a field of type Money, the
// request itself, an array's element, a map's value) went out as its
// fields, {} when unexported, and arrived zero with no error; a struct
// type with state and no field encoding/json writes did too. Each is
// refused, naming the field and what to do; what encoding/json carries
// (behind a pointer, a slice's element, value receivers, promoted fields,
// an empty struct) is not.
func TestHTTP_ValuesJSONWouldLoseAreRefused(t *testing.T) {
	for _, c := range []struct {
		name, field, extra string
		json               bool   // encoding/json carries the same value back
		want               string // "" when svcgen accepts it
	}{
		{"pointer MarshalJSON, field", "Price Money `json:\"price\"`", ptrMoneySrc,
			survives(struct{ Price ptrMoney }{ptrMoney{150}}),
			"services/weird/odd.go:19: Odd: field OddRequest.Price has type Money, which JSON cannot carry: Money's MarshalJSON has a pointer receiver (services/weird/odd.go:49), " +
				"and encoding/json calls it only on a value it can address, which a Money here is not (in a value request or response, an array, a map's value), so it is skipped: " +
				"the value goes out as its fields ({} when they are unexported) and arrives zero, without an error; give MarshalJSON a value receiver: func (m Money) MarshalJSON() ([]byte, error), or use *Money in its place"},
		{"pointer MarshalJSON, pointer field", "Price *Money `json:\"price\"`", ptrMoneySrc,
			survives(struct{ Price *ptrMoney }{&ptrMoney{150}}), ""},
		{"pointer MarshalJSON, slice element", "Prices []Money `json:\"prices\"`", ptrMoneySrc,
			survives(struct{ Prices []ptrMoney }{[]ptrMoney{{150}}}), ""},
		{"pointer MarshalJSON, array element", "Prices [2]Money `json:\"prices\"`", ptrMoneySrc,
			survives(struct{ Prices [2]ptrMoney }{[2]ptrMoney{{150}, {2}}}), "field OddRequest.Prices has type [2]Money, which JSON cannot carry: Money's MarshalJSON has a pointer receiver"},
		{"pointer MarshalJSON, map value", "ByName map[string]Money `json:\"by_name\"`", ptrMoneySrc,
			survives(struct{ ByName map[string]ptrMoney }{map[string]ptrMoney{"a": {150}}}), "field OddRequest.ByName has type map[string]Money, which JSON cannot carry: Money's MarshalJSON has a pointer receiver"},
		{"pointer MarshalJSON, map of pointers", "ByName map[string]*Money `json:\"by_name\"`", ptrMoneySrc,
			survives(struct{ ByName map[string]*ptrMoney }{map[string]*ptrMoney{"a": {150}}}), ""},
		{"pointer MarshalJSON, slices of map values", "ByName map[string][]Money `json:\"by_name\"`", ptrMoneySrc,
			survives(struct{ ByName map[string][]ptrMoney }{map[string][]ptrMoney{"a": {{150}}}}), ""},
		{"pointer MarshalJSON, in a struct field", "Line Line `json:\"line\"`", ptrMoneySrc + "\n\ntype Line struct {\n\tPrice Money `json:\"price\"`\n}",
			survives(struct{ Line moneyLine }{moneyLine{ptrMoney{150}}}), "services/weird/odd.go:54: Odd: field Line.Price has type Money, which JSON cannot carry: Money's MarshalJSON has a pointer receiver"},
		{"pointer MarshalJSON, in a slice's struct", "Lines []Line `json:\"lines\"`", ptrMoneySrc + "\n\ntype Line struct {\n\tPrice Money `json:\"price\"`\n}",
			survives(struct{ Lines []moneyLine }{[]moneyLine{{ptrMoney{150}}}}), ""},
		{"pointer MarshalJSON, in a map's struct", "Lines map[string]Line `json:\"lines\"`", ptrMoneySrc + "\n\ntype Line struct {\n\tPrice Money `json:\"price\"`\n}",
			survives(struct{ Lines map[string]moneyLine }{map[string]moneyLine{"a": {ptrMoney{150}}}}), "Odd: field Line.Price has type Money, which JSON cannot carry: Money's MarshalJSON has a pointer receiver"},
		{"pointer MarshalJSON, map value in a slice's struct", "Lines []Line `json:\"lines\"`", ptrMoneySrc + "\n\ntype Line struct {\n\tByName map[string]Money `json:\"by_name\"`\n}",
			survives(struct{ Lines []moneyMap }{[]moneyMap{{map[string]ptrMoney{"a": {150}}}}}), "Odd: field Line.ByName has type map[string]Money, which JSON cannot carry: Money's MarshalJSON has a pointer receiver"},
		{"pointer MarshalJSON, promoted", "P Priced `json:\"p\"`", ptrMoneySrc + "\n\ntype Priced struct{ Money }",
			survives(struct{ P pricedByVal }{pricedByVal{ptrMoney{150}}}), "field OddRequest.P has type Priced, which JSON cannot carry: Priced's (promoted from Money) MarshalJSON has a pointer receiver"},
		{"pointer MarshalText", "Price Money `json:\"price\"`", txtMoneySrc,
			survives(struct{ Price ptrTextMoney }{ptrTextMoney{150}}), "Money's MarshalText (it has no MarshalJSON) has a pointer receiver (services/weird/odd.go:49), and encoding/json calls it only on a value it can address"},
		{"value MarshalJSON", "Price Money `json:\"price\"`\nM map[string]Money `json:\"m\"`", valMoneySrc,
			survives(struct {
				Price valMoney
				M     map[string]valMoney
			}{valMoney{150}, map[string]valMoney{"a": {2}}}), ""},
		{"the request's own pointer MarshalJSON", "", "func (r *OddRequest) MarshalJSON() ([]byte, error) { return nil, nil }\n\nfunc (r *OddRequest) UnmarshalJSON([]byte) error { return nil }",
			survives(ptrMoney{150}), "services/weird/odd.go:17: Odd: request type OddRequest: OddRequest's MarshalJSON has a pointer receiver (services/weird/odd.go:47), and encoding/json calls it only on a value it can address, which the request is not (the generated code encodes it as a value)"},
		{"math/big.Int value", "N big.Int `json:\"n\"`", "",
			survives(struct{ N big.Int }{*big.NewInt(150)}), "field OddRequest.N has type big.Int, which JSON cannot carry: big.Int's MarshalJSON has a pointer receiver"},
		{"math/big.Int pointer", "N *big.Int `json:\"n\"`", "",
			survives(struct{ N *big.Int }{big.NewInt(150)}), ""},
		// Nothing encoding/json writes.
		{"no exported field, no method", "C Cents `json:\"c\"`", "type Cents struct{ n int64 }",
			survives(struct{ C opaqueCents }{opaqueCents{150}}),
			"services/weird/odd.go:19: Odd: field OddRequest.C has type Cents, which JSON cannot carry: Cents has no field encoding/json writes (n: unexported) and no MarshalJSON or MarshalText, so it goes out as {} and arrives zero, without an error; " +
				"export the fields that hold its state, or give it MarshalJSON (with a value receiver) and UnmarshalJSON"},
		{"anonymous struct", "C struct{ n int64 } `json:\"c\"`", "",
			survives(struct{ C struct{ n int64 } }{struct{ n int64 }{150}}), "field OddRequest.C has type struct{n int64}, which JSON cannot carry: struct{n int64} has no field encoding/json writes (n: unexported)"},
		{"a type declared over time.Time", "At Stamp `json:\"at\"`", "type Stamp time.Time",
			survives(struct{ At stamp }{stamp(time.Unix(150, 0).UTC())}),
			"field OddRequest.At has type Stamp, which JSON cannot carry: Stamp is declared as time.Time but does not get time.Time's methods (MarshalJSON), and time.Time's fields are unexported, so a Stamp goes out as {} and arrives zero, without an error; " +
				"use time.Time itself, make Stamp an alias (type Stamp = time.Time), or give Stamp MarshalJSON (with a value receiver) and UnmarshalJSON"},
		{"an alias of time.Time", "At Stamp `json:\"at\"`", "type Stamp = time.Time",
			survives(struct{ At stampAlias }{time.Unix(150, 0).UTC()}), ""},
		{"a type declared over big.Int", "N Num `json:\"n\"`", "type Num big.Int",
			survives(struct{ N bigNum }{bigNum(*big.NewInt(150))}), "Num is declared as big.Int but does not get big.Int's methods (MarshalJSON)"},
		{"a type declared over netip.Addr", "A Addr `json:\"a\"`", "type Addr netip.Addr",
			survives(struct{ A addrOf4 }{addrOf4(netip.MustParseAddr("10.0.0.1"))}), "Addr is declared as netip.Addr but does not get netip.Addr's methods (MarshalText)"},
		{"promoted fields of an unexported embedded struct", "O Outer `json:\"o\"`", "type Outer struct{ inner }\n\ntype inner struct{ A int }",
			survives(struct{ O outerOfInner }{outerOfInner{promoted{150}}}), ""},
		{"empty struct", "E Empty `json:\"e\"`", "type Empty struct{}",
			survives(struct{ E struct{} }{}), ""},
		{"the response without an exported field", "", "REPLACE",
			survives(opaqueCents{150}), "services/weird/odd.go:28: OddOut, OddGet: response type OddOutResponse cannot travel as JSON: OddOutResponse has no field encoding/json writes (n, shared: unexported)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.json != (c.want == "") {
				t.Fatalf("encoding/json carries the value back: %v, and the case expects svcgen to refuse it: %v", c.json, c.want != "")
			}
			files := weird(c.field, strings.TrimPrefix(c.extra, "REPLACE")+"\n\nvar _ big.Int")
			if c.extra == "REPLACE" { // OddOut's response (OddGet's too, but GET is in weird)
				files["odd.go"] = []byte(strings.NewReplacer("N      int    `json:\"n\"`", "n int", "Shared Shared `json:\"shared\"`", "shared Shared").Replace(string(files["odd.go"])))
			}
			files["odd.go"] = []byte(strings.Replace(string(files["odd.go"]), "\"context\"\n", "\"context\"; \"math/big\"\n", 1))
			jsonVerdict(t, files, c.want)
		})
	}
}

// TestHTTP_ValueChecksOnlyWhereJSONIsTheCodec: a GET request travels in
// the query string, not through encoding/json, so its own MarshalJSON's
// receiver does not matter; in a //warren:grpc service, which serves HTTP
// too and so is JSON-checked as well, the protobuf mapping refuses a type
// with unexported state itself, and the JSON check's problem at the same
// field yields to it: said once.
func TestHTTP_ValueChecksOnlyWhereJSONIsTheCodec(t *testing.T) {
	files := weird("", "func (r *OddGetRequest) MarshalJSON() ([]byte, error) { return nil, nil }")
	if _, err := Generate("services/weird", "weird", module, files, nil); err != nil {
		t.Fatalf("GET request with a pointer MarshalJSON: %v; want it accepted (it travels in the query string)", err)
	}
	_, err := Generate("services/things", "things", module, grpcThings("Price Money `json:\"price\"`", ptrMoneySrc), nil)
	if err == nil || strings.Count(err.Error(), "Thing.Price") != 1 || !strings.Contains(err.Error(), "which svcgen cannot map to protobuf") {
		t.Fatalf("err = %v; want the protobuf mapping's problem alone", err)
	}
}

// Structs that embed a type with JSON or text methods, as the cases below
// declare them in the service.
type (
	evt struct {
		time.Time
		Name string
	}
	evtAlone   struct{ time.Time }
	evtSkipped struct {
		time.Time
		Note string `json:"-"`
		seq  int
	}
	evtOwn struct {
		time.Time
		Name string
	}
	evtInner struct{ time.Time }
	evtOuter struct {
		evtInner
		Name string
	}
	evtAliased struct {
		stampAlias
		Name string
	}
	valPriced struct {
		valMoney
		Name string
	}
	ptrPriced struct{ *valMoney }
	valFee    struct{ cents int64 }
	feePair   struct {
		valMoney
		valFee
	}
	namedHost struct {
		netip.Addr
		Name string
	}
	unitNum struct {
		big.Int
		Unit string
	}
	// A type protobuf carries whole (its state is exported) whose
	// MarshalJSON has a pointer receiver.
	ptrMoneyExported struct{ Cents int64 }
)

func (e evtOwn) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		At   time.Time
		Name string
	}{e.Time, e.Name})
}
func (e *evtOwn) UnmarshalJSON(b []byte) error {
	var v struct {
		At   time.Time
		Name string
	}
	err := json.Unmarshal(b, &v)
	e.Time, e.Name = v.At, v.Name
	return err
}
func (m valFee) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, m.cents, 10), nil }
func (m *valFee) UnmarshalJSON(b []byte) (err error) {
	m.cents, err = strconv.ParseInt(string(b), 10, 64)
	return
}
func (m *ptrMoneyExported) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, m.Cents, 10), nil
}
func (m *ptrMoneyExported) UnmarshalJSON(b []byte) (err error) {
	m.Cents, err = strconv.ParseInt(string(b), 10, 64)
	return
}

// A struct with one direction of its own beside an embedded type's
// methods, as the half-own cases below declare it: objAmount travels as
// {"cents":n}, and its UnmarshalJSON ignores any other key, as
// encoding/json does, so what is lost is lost without an error.
type (
	objAmount  struct{ Cents int64 }
	amountWire struct{ Cents int64 }
	noteWire   struct {
		Cents int64
		Note  string
	}
	ownMarshal struct {
		objAmount
		Note string
	} // MarshalJSON of its own
	ownUnmarsh struct {
		objAmount
		Note string
	} // UnmarshalJSON of its own
	ownText struct {
		time.Time
		Note string
	} // MarshalText and UnmarshalText of its own
	ownAlone struct{ objAmount } // MarshalJSON of its own, as objAmount's
)

func (a objAmount) MarshalJSON() ([]byte, error) { return json.Marshal(amountWire{a.Cents}) }
func (a *objAmount) UnmarshalJSON(b []byte) error {
	var w amountWire
	err := json.Unmarshal(b, &w)
	a.Cents = w.Cents
	return err
}
func (m ownMarshal) MarshalJSON() ([]byte, error) { return json.Marshal(noteWire{m.Cents, m.Note}) }
func (m *ownUnmarsh) UnmarshalJSON(b []byte) error {
	var w noteWire
	err := json.Unmarshal(b, &w)
	m.Cents, m.Note = w.Cents, w.Note
	return err
}
func (e ownText) MarshalText() ([]byte, error) {
	return []byte(e.Time.Format(time.RFC3339) + " " + e.Note), nil
}
func (e *ownText) UnmarshalText(b []byte) (err error) {
	at, note, _ := strings.Cut(string(b), " ")
	e.Time, err = time.Parse(time.RFC3339, at)
	e.Note = note
	return err
}
func (m ownAlone) MarshalJSON() ([]byte, error) { return json.Marshal(amountWire{m.Cents}) }

// survivesOrPanics is survives, with a panic in encoding/json (a
// promoted method called through a nil embedded pointer) a loss.
func survivesOrPanics[T any](v T) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return survives(v)
}

// TestHTTP_PromotedMarshalersThatSwallowFieldsAreRefused: a struct that
// embeds a type with MarshalJSON (or MarshalText, UnmarshalJSON,
// UnmarshalText) gets the method promoted, and encoding/json then writes
// and reads the whole struct as the embedded value: type Event struct{
// time.Time; Name string } went out as a bare time string and Name was
// lost without an error; through an embedded pointer, the method is called
// on the nil pointer of every value decoded into, and panics. Each is
// refused at the embedded field, saying to name it or to give the struct
// its own methods; a struct of the embedded value alone (beside fields
// JSON skips) and one whose own methods win are accepted. Where two
// embedded types' methods cancel out (Go promotes neither), encoding/json
// writes the struct's own fields, and the struct is checked as such.
func TestHTTP_PromotedMarshalersThatSwallowFieldsAreRefused(t *testing.T) {
	const valFeeSrc = "\n\ntype Fee struct{ cents int64 }\n\nfunc (f Fee) MarshalJSON() ([]byte, error) { return nil, nil }\n\nfunc (f *Fee) UnmarshalJSON([]byte) error { return nil }"
	const event = "type Event struct {\n\ttime.Time\n\tName string `json:\"name\"`\n}"
	const amount = "type Amount struct {\n\tCents int64 `json:\"cents\"`\n}\n\nfunc (a Amount) MarshalJSON() ([]byte, error) { return nil, nil }\n\nfunc (a *Amount) UnmarshalJSON([]byte) error { return nil }"
	const money = "\n\ntype Money struct {\n\tAmount\n\tNote string `json:\"note\"`\n}"
	for _, c := range []struct {
		name, field, extra string
		json               bool   // encoding/json carries the same value back
		want               string // "" when svcgen accepts it
	}{
		{"embedded time.Time beside a field", "E Event `json:\"e\"`", event,
			survives(struct{ E evt }{evt{time.Unix(150, 0).UTC(), "x"}}),
			"services/weird/odd.go:48: Odd: field Event.Time embeds time.Time, so Event gets time.Time's MarshalJSON, UnmarshalJSON, MarshalText and UnmarshalText, " +
				"and encoding/json writes and reads a Event as that time.Time alone: its other fields (Name) are lost, without an error; " +
				"give the embedded field a name (Time time.Time `json:\"time\"`), or give Event its own MarshalJSON (with a value receiver) and UnmarshalJSON"},
		{"embedded local Money, value MarshalJSON", "P Priced `json:\"p\"`", valMoneySrc + "\n\ntype Priced struct {\n\tMoney\n\tName string `json:\"name\"`\n}",
			survives(struct{ P valPriced }{valPriced{valMoney{150}, "x"}}),
			"services/weird/odd.go:54: Odd: field Priced.Money embeds Money, so Priced gets Money's MarshalJSON and UnmarshalJSON, and encoding/json writes and reads a Priced as that Money alone: its other fields (Name) are lost"},
		{"embedded pointer alone", "P Priced `json:\"p\"`", valMoneySrc + "\n\ntype Priced struct{ *Money }",
			survivesOrPanics(struct{ P ptrPriced }{ptrPriced{&valMoney{150}}}),
			"field Priced.Money embeds *Money, so Priced gets Money's MarshalJSON and UnmarshalJSON, and encoding/json writes and reads a Priced as that Money alone; " +
				"through the embedded pointer it calls the method even when the pointer is nil, as it is in every Priced it decodes into, and panics; give the embedded field a name (Money *Money `json:\"money\"`)"},
		{"embedded netip.Addr", "H Host `json:\"h\"`", "type Host struct {\n\tnetip.Addr\n\tName string `json:\"name\"`\n}",
			survives(struct{ H namedHost }{namedHost{netip.MustParseAddr("10.0.0.1"), "x"}}),
			"field Host.Addr embeds netip.Addr, so Host gets netip.Addr's MarshalText and UnmarshalText, and encoding/json writes and reads a Host as that netip.Addr alone: its other fields (Name) are lost"},
		{"embedded big.Int", "N Num `json:\"n\"`", "type Num struct {\n\tbig.Int\n\tUnit string `json:\"unit\"`\n}",
			survives(struct{ N unitNum }{unitNum{*big.NewInt(150), "kg"}}),
			"field Num.Int embeds big.Int, so Num gets big.Int's MarshalJSON, UnmarshalJSON, MarshalText and UnmarshalText"},
		{"promoted through an embedded struct", "O Outer `json:\"o\"`", "type Outer struct {\n\tInner\n\tName string `json:\"name\"`\n}\n\ntype Inner struct{ time.Time }",
			survives(struct{ O evtOuter }{evtOuter{evtInner{time.Unix(150, 0).UTC()}, "x"}}),
			"field Outer.Inner embeds Inner, so Outer gets time.Time's MarshalJSON, UnmarshalJSON, MarshalText and UnmarshalText (through Inner)"},
		{"an alias of time.Time", "E Event `json:\"e\"`", "type Event struct {\n\tStamp\n\tName string `json:\"name\"`\n}\n\ntype Stamp = time.Time",
			survives(struct{ E evtAliased }{evtAliased{time.Unix(150, 0).UTC(), "x"}}),
			"field Event.Stamp embeds Stamp, so Event gets time.Time's MarshalJSON"},
		{"the request itself", "time.Time", "",
			survives(struct {
				N int
				time.Time
			}{150, time.Unix(150, 0).UTC()}),
			"services/weird/odd.go:19: Odd: field OddRequest.Time embeds time.Time, so OddRequest gets time.Time's MarshalJSON, UnmarshalJSON, MarshalText and UnmarshalText, and encoding/json writes and reads a OddRequest as that time.Time alone: its other fields (N) are lost"},
		{"the request itself, a local pointer-receiver Money", "Money", ptrMoneySrc,
			survives(struct {
				N int
				ptrMoney
			}{150, ptrMoney{2}}),
			"services/weird/odd.go:19: Odd: field OddRequest.Money embeds Money, so OddRequest gets Money's MarshalJSON and UnmarshalJSON, and encoding/json writes and reads a OddRequest as that Money alone: its other fields (N) are lost"},
		{"an anonymous struct", "E struct {\ntime.Time\nName string\n} `json:\"e\"`", "",
			survives(struct {
				E struct {
					time.Time
					Name string
				}
			}{}),
			"field OddRequest.E has type struct{time.Time; Name string}, which JSON cannot carry: field struct{time.Time; Name string}.Time embeds time.Time"},
		// Go promotes neither of two MarshalJSONs at one depth, and
		// encoding/json writes the struct's fields: none here.
		{"two embedded types' methods cancel out", "P Pair `json:\"p\"`", valMoneySrc + valFeeSrc + "\n\ntype Pair struct {\n\tMoney\n\tFee\n}",
			survives(struct{ P feePair }{feePair{valMoney{150}, valFee{2}}}),
			"field OddRequest.P has type Pair, which JSON cannot carry: Pair has no field encoding/json writes (cents, cents: unexported) and no MarshalJSON or MarshalText, so it goes out as {}"},
		// Methods of its own that leave one direction to the embedded
		// type: that direction writes or reads the embedded value alone.
		{"own MarshalJSON, promoted UnmarshalJSON", "M Money `json:\"m\"`", amount + money + "\n\nfunc (m Money) MarshalJSON() ([]byte, error) { return nil, nil }",
			survives(struct{ M ownMarshal }{ownMarshal{objAmount{150}, "x"}}),
			"services/weird/odd.go:56: Odd: field Money.Amount embeds Amount, so Money gets Amount's UnmarshalJSON beside its own MarshalJSON (services/weird/odd.go:60), " +
				"and encoding/json reads a Money as that Amount alone: its other fields (Note) are lost; " +
				"declare func (m *Money) UnmarshalJSON(b []byte) error on Money too, so that both directions are its own, or give the embedded field a name (Amount Amount `json:\"amount\"`)"},
		{"own UnmarshalJSON, promoted MarshalJSON", "M Money `json:\"m\"`", amount + money + "\n\nfunc (m *Money) UnmarshalJSON([]byte) error { return nil }",
			survives(struct{ M ownUnmarsh }{ownUnmarsh{objAmount{150}, "x"}}),
			"field Money.Amount embeds Amount, so Money gets Amount's MarshalJSON beside its own UnmarshalJSON (services/weird/odd.go:60), " +
				"and encoding/json writes a Money as that Amount alone: its other fields (Note) are lost; " +
				"declare func (m Money) MarshalJSON() ([]byte, error) on Money too"},
		{"own text methods, promoted JSON methods", "E Event `json:\"e\"`", event + "\n\nfunc (e Event) MarshalText() ([]byte, error) { return nil, nil }\n\nfunc (e *Event) UnmarshalText([]byte) error { return nil }",
			survives(struct{ E ownText }{ownText{time.Unix(150, 0).UTC(), "x"}}),
			"field Event.Time embeds time.Time, so Event gets time.Time's MarshalJSON and UnmarshalJSON beside its own MarshalText and UnmarshalText (services/weird/odd.go:52), " +
				"and encoding/json writes and reads a Event as that time.Time alone (it prefers MarshalJSON and UnmarshalJSON to the text methods): its other fields (Name) are lost; " +
				"declare func (e Event) MarshalJSON() ([]byte, error) and func (e *Event) UnmarshalJSON(b []byte) error on Event too"},
		// Accepted.
		{"own MarshalJSON beside the embedded value alone", "M Money `json:\"m\"`", amount + "\n\ntype Money struct{ Amount }\n\nfunc (m Money) MarshalJSON() ([]byte, error) { return nil, nil }",
			survives(struct{ M ownAlone }{ownAlone{objAmount{150}}}), ""},
		{"the embedded value alone", "E Event `json:\"e\"`", "type Event struct{ time.Time }",
			survives(struct{ E evtAlone }{evtAlone{time.Unix(150, 0).UTC()}}), ""},
		{"beside fields JSON skips", "E Event `json:\"e\"`", "type Event struct {\n\ttime.Time\n\tNote string `json:\"-\"`\n\tseq  int\n}",
			survives(struct{ E evtSkipped }{evtSkipped{Time: time.Unix(150, 0).UTC()}}), ""},
		{"its own methods win", "E Event `json:\"e\"`", event + "\n\nfunc (e Event) MarshalJSON() ([]byte, error) { return nil, nil }\n\nfunc (e *Event) UnmarshalJSON([]byte) error { return nil }",
			survives(struct{ E evtOwn }{evtOwn{time.Unix(150, 0).UTC(), "x"}}), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.json != (c.want == "") {
				t.Fatalf("encoding/json carries the value back: %v, and the case expects svcgen to refuse it: %v", c.json, c.want != "")
			}
			files := weird(c.field, c.extra+"\n\nvar _ big.Int")
			files["odd.go"] = []byte(strings.Replace(string(files["odd.go"]), "\"context\"\n", "\"context\"; \"math/big\"\n", 1))
			jsonVerdict(t, files, c.want)
		})
	}
}

// TestHTTP_JSONCheckRunsForGRPCServicesToo: a //warren:grpc service serves
// HTTP as well (every service gets transport_gen.go), so its bodies are
// encoding/json's too: a type protobuf carries whole (all its state in
// exported fields) whose MarshalJSON has a pointer receiver went out over
// HTTP as its fields and was not read back, and was accepted because the
// JSON check did not run. It is refused now; where the protobuf mapping
// refuses the same field (an embedded time.Time), it is said once, by the
// mapping.
func TestHTTP_JSONCheckRunsForGRPCServicesToo(t *testing.T) {
	if survives(struct{ Price ptrMoneyExported }{ptrMoneyExported{150}}) {
		t.Fatal("encoding/json carries a value of a type whose MarshalJSON has a pointer receiver; the case expects it not to")
	}
	const money = "type Money struct {\n\tCents int64 `json:\"cents\"`\n}\n\nfunc (m *Money) MarshalJSON() ([]byte, error) { return nil, nil }\n\nfunc (m *Money) UnmarshalJSON([]byte) error { return nil }"
	_, err := Generate("services/things", "things", module, grpcThings("Price Money `json:\"price\"`", money), nil)
	if err == nil || strings.Count(err.Error(), "Thing.Price") != 1 ||
		!strings.Contains(err.Error(), "services/things/service.go:11: Put: field Thing.Price has type Money, which JSON cannot carry: Money's MarshalJSON has a pointer receiver (services/things/service.go:18)") {
		t.Fatalf("err = %v; want the JSON check's problem, once", err)
	}
	if _, err := Generate("services/things", "things", module, grpcThings("Price *Money `json:\"price\"`", money), nil); err != nil {
		t.Fatalf("a pointer field: %v; want it accepted (encoding/json can address it)", err)
	}
	files := grpcThings("time.Time\nName string `json:\"name\"`", "")
	files["service.go"] = []byte(strings.Replace(string(files["service.go"]), `import "context"`, "import (\n\t\"context\"\n\t\"time\"\n)", 1))
	_, err = Generate("services/things", "things", module, files, nil)
	if err == nil || strings.Count(err.Error(), "field Thing.time.Time is embedded; a gRPC message lists its fields") != 1 || strings.Contains(err.Error(), "embeds time.Time") {
		t.Fatalf("err = %v; want the protobuf mapping's problem alone", err)
	}
}

// The types of TestHTTP_EmbeddedPointerToUnexportedStructIsRefused's
// cases, for encoding/json's verdict.
type (
	region        struct{ Region string }
	Region        = region // an exported name for it
	regionState   struct{ n int }
	regionWrap    struct{ *region }
	ptrRegion     struct{ *region }
	ptrRegionName struct {
		*region `json:"in"`
		Name    string
	}
	ptrRegionNested struct {
		regionWrap
		Name string
	}
	ptrRegionState      struct{ *regionState }
	ptrRegionAlias      struct{ *Region }
	ptrRegionNamed      struct{ In *region }
	ptrRegionByVal      struct{ region }
	RegionExp           struct{ Region string }
	regionOf            = RegionExp // an unexported name for an exported type
	ptrRegionUnexpAlias struct{ *regionOf }
	ptrRegionDashed     struct {
		*region `json:"-"`
	}
)

// TestHTTP_EmbeddedPointerToUnexportedStructIsRefused: encoding/json
// writes the fields promoted from an embedded *inner (a struct type under
// an unexported name), but reading them back means allocating the nil
// pointer of the value it decodes into, a field it cannot set: every call
// that sent them failed, "json: cannot set embedded pointer to unexported
// struct" (report r55b F2); with a json tag, decoding into it panicked.
// Each is refused at the embedded field, saying to embed the value,
// export the type or name the field; what encoding/json reads back (the
// value embedded, an exported alias, a named field, no field JSON writes,
// json:"-") is accepted.
func TestHTTP_EmbeddedPointerToUnexportedStructIsRefused(t *testing.T) {
	const inner = "\n\ntype inner struct {\n\tRegion string `json:\"region\"`\n}"
	for _, c := range []struct {
		name, field, extra string
		json               bool   // encoding/json carries the same value back
		want               string // "" when svcgen accepts it
	}{
		{"embedded *inner", "*inner\nName string `json:\"name\"`", inner,
			survives(ptrRegion{&region{"eu"}}),
			"services/weird/odd.go:19: Odd: field OddRequest.inner embeds *inner, a pointer to a struct type under an unexported name: encoding/json writes the fields it promotes, " +
				"but reading them back needs to allocate the nil pointer of the value it decodes into, which it cannot set, so every call that sends them fails (json: cannot set embedded pointer to unexported struct); " +
				"embed the value (inner instead of *inner), export the type (or embed an exported alias of it: type Inner = inner), or name the field (Inner *inner `json:\"inner\"`)"},
		{"with a json tag", "*inner `json:\"in\"`", inner,
			survivesOrPanics(ptrRegionName{&region{"eu"}, "n"}),
			"field OddRequest.inner embeds *inner, a pointer to a struct type under an unexported name, with a json tag: encoding/json writes it as the field \"in\", but decoding into it panics"},
		{"in a struct embedded in a field's type", "P Wrapped `json:\"p\"`", inner + "\n\ntype Wrapped struct {\n\twrap\n\tName string `json:\"name\"`\n}\n\ntype wrap struct{ *inner }",
			survives(struct{ P ptrRegionNested }{ptrRegionNested{regionWrap{&region{"eu"}}, "n"}}),
			"services/weird/odd.go:58: Odd: field wrap.inner embeds *inner"},
		{"an unexported alias of an exported type", "*inner", "\n\ntype inner = Inner\n\ntype Inner struct {\n\tRegion string `json:\"region\"`\n}",
			survives(ptrRegionUnexpAlias{&regionOf{"eu"}}), // the field's name is what counts
			"field OddRequest.inner embeds *inner"},
		// Accepted.
		{"the value embedded", "inner", inner, survives(ptrRegionByVal{region{"eu"}}), ""},
		{"an exported alias embedded", "*Inner", inner + "\n\ntype Inner = inner", survives(ptrRegionAlias{&region{"eu"}}), ""},
		{"a named field", "In *inner `json:\"in\"`", inner, survives(ptrRegionNamed{&region{"eu"}}), ""},
		// Nothing is written of it, so nothing is decoded into it (its
		// unexported state is left out, as beside any exported field).
		{"no field JSON writes", "*inner", "\n\ntype inner struct{ n int }", survives(ptrRegionState{}), ""},
		{"json:\"-\"", "*inner `json:\"-\"`", inner, survives(ptrRegionDashed{}), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.json != (c.want == "") {
				t.Fatalf("encoding/json carries the value back: %v, and the case expects svcgen to refuse it: %v", c.json, c.want != "")
			}
			jsonVerdict(t, weird(c.field, c.extra), c.want)
		})
	}
}
