package config

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// --help's DEFAULT column said 0 for --weight while an instance without
// one weighs 100 (report j60a F9): it shows the effective default. The
// value stays 0 ("not set", nothing published), and --weight 0 is still
// accepted as the default.
func TestParse_WeightHelpShowsTheEffectiveDefault(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse("user", "1.0", backends, []string{"--help"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	var row []string
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "--weight" {
			row = f
		}
	}
	if len(row) < 3 || row[1] != "WARREN_WEIGHT" || row[2] != strconv.Itoa(registry.DefaultWeight) {
		t.Errorf("--weight row %q, want its DEFAULT column %d", row, registry.DefaultWeight)
	}
	for _, args := range [][]string{nil, {"--weight", "0"}} {
		c, err := Parse("user", "1.0", backends, args, &bytes.Buffer{})
		if err != nil || c.Weight != 0 {
			t.Errorf("%q: weight %d, err %v; want 0 (not set: the default)", args, c.Weight, err)
		}
	}
	c, err := Parse("user", "1.0", backends, []string{"--weight", "10"}, &bytes.Buffer{})
	if err != nil || c.Weight != 10 {
		t.Errorf("--weight 10: weight %d, err %v", c.Weight, err)
	}
}
