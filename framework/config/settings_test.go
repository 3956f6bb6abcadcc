package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type paySettings struct {
	MaxCharge int    `setting:"max-charge" help:"largest charge in cents"`
	Currency  string `setting:"currency" help:"ISO currency"`
	Region    string `setting:"region" help:"where"`
	Mode      string `setting:"mode" help:"how"`
}

func (s paySettings) Validate() error {
	if s.MaxCharge <= 0 {
		return errors.New("--max-charge must be positive")
	}
	return nil
}

// TestParseWith_SettingsPrecedenceFlagsEnvFileDefaults: each of four
// settings is set by one more source than the one before; the most
// precedent source wins: flag > WARREN_* variable > --config file >
// default.
func TestParseWith_SettingsPrecedenceFlagsEnvFileDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pay.yaml")
	os.WriteFile(file, []byte("currency: GBP\nregion: file\nmode: file\nlisten: \":9999\"\n"), 0o644)
	t.Setenv("WARREN_REGION", "env")
	t.Setenv("WARREN_MODE", "env")
	s := paySettings{MaxCharge: 100, Currency: "EUR", Region: "default", Mode: "default"}
	c, err := ParseWith("pay", "v", backends, []string{"--config", file, "--mode", "flag"}, io.Discard, ParseOptions{Settings: []any{&s}})
	if err != nil {
		t.Fatal(err)
	}
	want := paySettings{MaxCharge: 100, Currency: "GBP", Region: "env", Mode: "flag"}
	if s != want {
		t.Fatalf("settings %+v, want %+v (default, file, env, flag)", s, want)
	}
	if c.Listen != ":9999" {
		t.Errorf("the file's listen did not reach the framework's setting: %q", c.Listen)
	}
}

func TestParseWith_SettingsErrorsSayWhich(t *testing.T) {
	for _, c := range []struct {
		args []string
		file string
		want string
	}{
		{[]string{"--max-charge", "0"}, "", "--max-charge must be positive"},
		{[]string{"--max-charge", "ten"}, "", "want an integer"},
		{nil, "bogus: 1\n", "bogus"},
		// ff's words, naming neither the file nor --help (report j53d 10).
		{nil, "grce: 1s\n", `config: key "grce" of FILE: no such flag (--help lists every flag; the keys are their names)`},
		{nil, "max-charge: ten\n", "want an integer"},
	} {
		args := c.args
		if c.file != "" {
			f := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(f, []byte(c.file), 0o644)
			args = append(args, "--config", f)
		}
		s := paySettings{MaxCharge: 1}
		_, err := ParseWith("pay", "v", backends, args, io.Discard, ParseOptions{Settings: []any{&s}})
		want := strings.ReplaceAll(c.want, "FILE", filepathOf(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v %q: err = %v, want one containing %q", c.args, c.file, err, want)
		}
	}
}

func TestUsage_ListsTheServicesSettingsBesideTheFrameworks(t *testing.T) {
	var b strings.Builder
	s := paySettings{MaxCharge: 100}
	_, err := ParseWith("pay", "v", backends, []string{"--help"}, &b, ParseOptions{Settings: []any{&s}})
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"--max-charge", "WARREN_MAX_CHARGE", "largest charge in cents", "--listen", "--config"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// filepathOf is the value of --config in args, or "".
func filepathOf(args []string) string {
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// A --config value reaches the Config as written (version: 1.10 stays
// 1.10, as WARREN_VERSION=1.10 gives it), and a file the parser refuses is
// named in the error, as a refused value of it is.
func TestParse_ConfigFileValuesAsWrittenAndItsFaultsNameIt(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "svc.yaml")
	os.WriteFile(file, []byte("version: 1.10\nzone: 012\n"), 0o644)
	c, err := Parse("svc", "", backends, []string{"--config", file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "1.10" || c.Zone != "012" {
		t.Errorf("version %q zone %q, want 1.10 and 012 as written", c.Version, c.Zone)
	}
	for _, in := range []string{"listen: \":9000\"\n---\ngrace: 5s\n", "grace: 5s\ngrace: 7s\n", "a: [b\n"} {
		os.WriteFile(file, []byte(in), 0o644)
		_, err := Parse("svc", "", backends, []string{"--config", file}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--config "+file+": ") {
			t.Errorf("%q: err = %v, want one naming --config %s", in, err, file)
		}
	}
}

// A setting of a backend --registry does not name, given while --registry
// was left at its default, is refused naming both and where the value came
// from: WARREN_OTHER_ENDPOINTS without WARREN_REGISTRY=other opened the
// default backend and ignored it. With --registry given, another backend's
// settings (a shared environment) are left alone.
func TestParse_AnotherBackendsSettingWithoutRegistryIsRefused(t *testing.T) {
	t.Setenv("WARREN_OTHER_ENDPOINTS", "10.0.0.9:2379")
	_, err := Parse("svc", "", backends, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--other-endpoints (from WARREN_OTHER_ENDPOINTS)") || !strings.Contains(err.Error(), "set --registry other") {
		t.Fatalf("err = %v, want a refusal naming --other-endpoints, its variable and --registry other", err)
	}
	for _, args := range [][]string{{"--registry", "toy"}, {"--registry", "other"}} {
		if _, err := Parse("svc", "", backends, args, io.Discard); err != nil {
			t.Errorf("%v: %v, want accepted", args, err)
		}
	}
	t.Setenv("WARREN_REGISTRY", "toy")
	if _, err := Parse("svc", "", backends, nil, io.Discard); err != nil {
		t.Errorf("WARREN_REGISTRY=toy: %v, want accepted", err)
	}
}
