package settings

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

type shop struct {
	MaxCharge int           `setting:"max-charge" help:"largest charge in cents"`
	LedgerURL string        `help:"ledger base URL"`
	Timeout   time.Duration `help:"ledger timeout"`
	Live      bool          `help:"charge for real"`
	Regions   []string      `help:"regions served"`
	Rate      float64
	Skipped   string `setting:"-"`
	hidden    string
}

func TestBind_FlagsNamedTypedAndDefaultedFromTheStruct(t *testing.T) {
	s := shop{MaxCharge: 500, LedgerURL: "http://ledger", Timeout: time.Second, Regions: []string{"eu"}}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := Bind(fs, &s); err != nil {
		t.Fatal(err)
	}
	for name, def := range map[string]string{"max-charge": "500", "ledger-url": "http://ledger", "timeout": "1s", "live": "false", "regions": "eu", "rate": "0"} {
		f := fs.Lookup(name)
		if f == nil {
			t.Fatalf("no flag --%s", name)
		}
		if f.DefValue != def {
			t.Errorf("--%s default %q, want %q", name, f.DefValue, def)
		}
	}
	if fs.Lookup("skipped") != nil || fs.Lookup("hidden") != nil {
		t.Error("a skipped or unexported field got a flag")
	}
	if fs.Lookup("max-charge").Usage != "largest charge in cents" {
		t.Errorf("usage %q", fs.Lookup("max-charge").Usage)
	}
	err := fs.Parse([]string{"--max-charge", "7", "--timeout", "250ms", "--live", "--regions", "eu, us", "--rate", "0.5"})
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxCharge != 7 || s.Timeout != 250*time.Millisecond || !s.Live || len(s.Regions) != 2 || s.Regions[1] != "us" || s.Rate != 0.5 {
		t.Fatalf("parsed %+v", s)
	}
}

func TestBind_BadValuesAndDeclarationsAreClearErrors(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var s shop
	Bind(fs, &s)
	if err := fs.Parse([]string{"--max-charge", "five"}); err == nil || !strings.Contains(err.Error(), "want an integer") {
		t.Errorf("--max-charge five: %v", err)
	}
	if err := Bind(flag.NewFlagSet("t", flag.ContinueOnError), s); err == nil || !strings.Contains(err.Error(), "pointer to a struct") {
		t.Errorf("non-pointer: %v", err)
	}
	type bad struct{ M map[string]int }
	if err := Bind(flag.NewFlagSet("t", flag.ContinueOnError), &bad{}); err == nil || !strings.Contains(err.Error(), "bad.M: type map[string]int is not supported") {
		t.Errorf("map field: %v", err)
	}
	taken := flag.NewFlagSet("t", flag.ContinueOnError)
	taken.String("timeout", "", "")
	if err := Bind(taken, &shop{}); err == nil || !strings.Contains(err.Error(), "--timeout is already defined") {
		t.Errorf("clash: %v", err)
	}
	// Every problem in one answer, not one per start.
	type many struct {
		Rate    float32
		Timeout time.Duration
		Ports   []int
	}
	fresh := flag.NewFlagSet("t", flag.ContinueOnError)
	fresh.String("timeout", "", "")
	err := Bind(fresh, &many{})
	for _, want := range []string{"many.Rate: type float32", "many.Timeout: flag --timeout", "many.Ports: type []int"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("three bad fields: %v; want it to name %q", err, want)
		}
	}
}

func TestYAMLParser_FlatKeysListsAndRefusals(t *testing.T) {
	got := map[string]string{}
	set := func(k, v string) error { got[k] = v; return nil }
	if err := YAMLParser(strings.NewReader("max-charge: 5\nregions: [eu, us]\nlive: true\n"), set); err != nil {
		t.Fatal(err)
	}
	if got["max-charge"] != "5" || got["regions"] != "eu,us" || got["live"] != "true" {
		t.Fatalf("set %v", got)
	}
	if err := YAMLParser(strings.NewReader("ledger:\n  url: x\n"), set); err == nil || !strings.Contains(err.Error(), `key "ledger" holds a mapping`) {
		t.Errorf("nested: %v", err)
	}
	if err := YAMLParser(strings.NewReader("a: [b\n"), set); err == nil || !strings.Contains(err.Error(), "YAML") {
		t.Errorf("bad YAML: %v", err)
	}
	if err := YAMLParser(strings.NewReader(""), set); err != nil {
		t.Errorf("empty file: %v", err)
	}
}
