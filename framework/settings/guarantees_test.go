package settings

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

type checked struct{ Min, Max int }

var errRange = errors.New("min above max")

func (c *checked) Validate() error {
	if c.Min > c.Max {
		return errRange
	}
	return nil
}

// Validate runs the struct's own Validate method and returns its error as
// it is; a struct without one is valid.
func TestValidate_RunsTheStructsMethod(t *testing.T) {
	if err := Validate(&checked{Min: 2, Max: 1}); !errors.Is(err, errRange) {
		t.Errorf("Validate(min 2 > max 1) = %v, want errRange", err)
	}
	if err := Validate(&checked{Min: 1, Max: 2}); err != nil {
		t.Errorf("Validate(valid) = %v", err)
	}
	if err := Validate(&shop{}); err != nil {
		t.Errorf("Validate(no method) = %v", err)
	}
}

type Embedded struct{ Inner string }

type wide struct {
	Embedded
	Count   uint
	Big     uint64
	Signed  int64
	Regions []string
}

// The documented types int64, uint and uint64 are flags; a uint refuses a
// negative number; an embedded struct is no flag and no error; empty items
// of a []string are dropped.
func TestBind_WideTypesAndLists(t *testing.T) {
	var w wide
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := Bind(fs, &w); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if fs.Lookup("embedded") != nil || fs.Lookup("inner") != nil {
		t.Error("an embedded struct got a flag")
	}
	err := fs.Parse([]string{"--count", "3", "--big", "18446744073709551615", "--signed", "-4", "--regions", "eu,, us ,"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Count != 3 || w.Big != 18446744073709551615 || w.Signed != -4 {
		t.Errorf("parsed %+v", w)
	}
	if len(w.Regions) != 2 || w.Regions[0] != "eu" || w.Regions[1] != "us" {
		t.Errorf("regions %q, want [eu us]", w.Regions)
	}
	if err := fs.Parse([]string{"--count", "-1"}); err == nil || !strings.Contains(err.Error(), "want a non-negative integer") {
		t.Errorf("--count -1: %v", err)
	}
	fs2 := flag.NewFlagSet("t", flag.ContinueOnError)
	fs2.SetOutput(io.Discard)
	if err := Bind(fs2, &shop{}); err != nil {
		t.Fatal(err)
	}
	if err := fs2.Parse([]string{"--timeout", "5"}); err == nil || !strings.Contains(err.Error(), "want a duration such as 500ms") {
		t.Errorf("--timeout 5: %v", err)
	}
}

// The YAML parser refuses a list of mappings and names the key whose value
// a flag refused.
func TestYAMLParser_ListOfMappingsAndRefusedValue(t *testing.T) {
	set := func(k, v string) error { return nil }
	if err := YAMLParser(strings.NewReader("regions:\n  - name: eu\n"), set); err == nil || !strings.Contains(err.Error(), `key "regions": a list of mappings`) {
		t.Errorf("list of mappings: %v", err)
	}
	refuse := func(k, v string) error { return errors.New("want an integer") }
	if err := YAMLParser(strings.NewReader("max-charge: five\n"), refuse); err == nil || !strings.Contains(err.Error(), `key "max-charge": want an integer`) {
		t.Errorf("refused value: %v", err)
	}
}
