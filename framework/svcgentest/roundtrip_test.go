package svcgentest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// recorder is a testing.TB that keeps what Errorf reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

type Item struct {
	Price int8
	At    time.Time
}

type Charge struct {
	ID      string
	Amount  int64
	Note    *string
	Items   []Item
	Labels  map[string]Item
	Wait    time.Duration
	skipped int
	Ignored string `json:"-"`
}

// toPB and fromPB carry Charge in a structpb.Struct; drop names a field
// (by path) they leave out, as a stale grpc_gen.go does.
func conversions(drop string) (func(Charge) *structpb.Struct, func(*structpb.Struct) Charge) {
	to := func(c Charge) *structpb.Struct {
		f := map[string]*structpb.Value{
			"id": structpb.NewStringValue(c.ID), "amount": structpb.NewNumberValue(float64(c.Amount)),
			"wait": structpb.NewNumberValue(float64(c.Wait)),
		}
		if c.Note != nil {
			f["note"] = structpb.NewStringValue(*c.Note)
		}
		item := func(it Item) *structpb.Value {
			s := map[string]*structpb.Value{"at": structpb.NewStringValue(it.At.Format(time.RFC3339Nano))}
			if drop != "Item.Price" {
				s["price"] = structpb.NewNumberValue(float64(it.Price))
			}
			return structpb.NewStructValue(&structpb.Struct{Fields: s})
		}
		var items []*structpb.Value
		for _, it := range c.Items {
			items = append(items, item(it))
		}
		f["items"] = structpb.NewListValue(&structpb.ListValue{Values: items})
		labels := map[string]*structpb.Value{}
		for k, it := range c.Labels {
			labels[k] = item(it)
		}
		f["labels"] = structpb.NewStructValue(&structpb.Struct{Fields: labels})
		if drop != "" && !strings.Contains(drop, ".") {
			delete(f, drop)
		}
		return &structpb.Struct{Fields: f}
	}
	from := func(m *structpb.Struct) Charge {
		item := func(v *structpb.Value) Item {
			s := v.GetStructValue().GetFields()
			at, _ := time.Parse(time.RFC3339Nano, s["at"].GetStringValue())
			return Item{Price: int8(s["price"].GetNumberValue()), At: at}
		}
		f := m.GetFields()
		c := Charge{ID: f["id"].GetStringValue(), Amount: int64(f["amount"].GetNumberValue()), Wait: time.Duration(f["wait"].GetNumberValue())}
		if n, ok := f["note"]; ok {
			s := n.GetStringValue()
			c.Note = &s
		}
		for _, v := range f["items"].GetListValue().GetValues() {
			c.Items = append(c.Items, item(v))
		}
		if l := f["labels"].GetStructValue().GetFields(); len(l) > 0 {
			c.Labels = map[string]Item{}
			for k, v := range l {
				c.Labels[k] = item(v)
			}
		}
		return c
	}
	return to, from
}

func TestRoundTrip_EveryFieldThatComesBackPasses(t *testing.T) {
	r := &recorder{TB: t}
	to, from := conversions("")
	RoundTrip(r, to, from)
	if len(r.errs) > 0 {
		t.Fatalf("conversions that carry every field were reported:\n%s", strings.Join(r.errs, "\n"))
	}
}

func TestRoundTrip_ALostFieldIsNamedWithRunSvcgenGen(t *testing.T) {
	for _, tc := range []struct{ drop, want string }{
		{"amount", "Charge.Amount: sent"},
		{"note", "Charge.Note: sent"},
		{"wait", "Charge.Wait: sent"},
		{"Item.Price", "Charge.Items[0].Price: sent"},
	} {
		r := &recorder{TB: t}
		to, from := conversions(tc.drop)
		RoundTrip(r, to, from)
		all := strings.Join(r.errs, "\n")
		if !strings.Contains(all, tc.want) || !strings.Contains(all, "run `svcgen gen`") {
			t.Errorf("dropping %s: reported %q; want %q and run `svcgen gen`", tc.drop, all, tc.want)
		}
		if tc.drop == "Item.Price" && !strings.Contains(all, "Charge.Labels[") {
			t.Errorf("dropping Item.Price: the map's element is not named: %q", all)
		}
	}
}

func TestRoundTrip_AFieldGRPCCannotHoldIsNamed(t *testing.T) {
	type Bad struct{ Extra map[int]string }
	r := &recorder{TB: t}
	RoundTrip(r, func(Bad) *structpb.Struct { return &structpb.Struct{} }, func(*structpb.Struct) Bad { return Bad{} })
	if all := strings.Join(r.errs, "\n"); !strings.Contains(all, "Bad.Extra: type map[int]string: gRPC map keys are strings") {
		t.Errorf("reported %q", all)
	}
}

// Node reaches itself: filled one level deep, its children empty, so the
// round trip ends (and sends no nil element, which protobuf cannot hold).
type Node struct {
	Name     string
	Children []*Node
	Parent   *Node
	ByName   map[string]*Node
}

func TestRoundTrip_ARecursiveTypeIsFilledOnceAndEnds(t *testing.T) {
	r := &recorder{TB: t}
	var sent Node
	RoundTrip(r, func(n Node) *structpb.Struct {
		sent = n
		return &structpb.Struct{Fields: map[string]*structpb.Value{"name": structpb.NewStringValue(n.Name)}}
	}, func(m *structpb.Struct) Node { return Node{Name: m.GetFields()["name"].GetStringValue()} })
	if len(r.errs) > 0 || sent.Name == "" || sent.Children != nil || sent.Parent != nil || sent.ByName != nil {
		t.Fatalf("sent %+v, reported %q", sent, r.errs)
	}
}
