package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// A value that parses but fails validation said which flag, not where the
// value came from: with a flag, a variable and a --config file, operators
// looked in the wrong place. The error now names the variable or the file
// and key, as a value that does not parse already did; a command-line
// value stays bare (the form of parse errors).
func TestParse_ValidationErrorsNameTheValuesSource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(file, []byte("weight: -1\nlog-format: xml\ntoy-ttl: 1ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  [][2]string
		want string
	}{
		{"flag", []string{"--weight", "-1"}, nil, `config: --weight -1: must not be negative`},
		// The flag wins over the variable; the error must not blame it.
		{"flag over variable", []string{"--weight", "-1"}, [][2]string{{"WARREN_WEIGHT", "-2"}}, `config: --weight -1: must not be negative`},
		{"variable", nil, [][2]string{{"WARREN_WEIGHT", "-1"}}, `config: --weight -1 (from WARREN_WEIGHT): must not be negative`},
		{"variable, quoted value", nil, [][2]string{{"WARREN_LOG_FORMAT", "xml"}}, `config: --log-format "xml" (from WARREN_LOG_FORMAT): want logfmt or json`},
		{"variable, no value in the text", nil, [][2]string{{"WARREN_GRACE", "-1s"}}, `config: --grace (from WARREN_GRACE) and --drain-timeout must not be negative`},
		{"variable, registry", nil, [][2]string{{"WARREN_REGISTRY", "zk"}}, `config: --registry (from WARREN_REGISTRY): unknown registry backend "zk": want toy or other`},
		{"config file", []string{"--config", file, "--log-format", "json", "--toy-ttl", "2s"}, nil,
			`config: --weight -1 (key weight of ` + file + `): must not be negative`},
		{"config file, quoted", []string{"--config", file, "--weight", "1", "--toy-ttl", "2s"}, nil,
			`config: --log-format "xml" (key log-format of ` + file + `): want logfmt or json`},
		{"config file, backend", []string{"--config", file, "--weight", "1", "--log-format", "json"}, nil,
			`config: --toy-ttl 1ms (key toy-ttl of ` + file + `): must be at least 1s`},
		{"variable over config file", []string{"--config", file, "--weight", "1", "--log-format", "json"}, [][2]string{{"WARREN_TOY_TTL", "2ms"}},
			`config: --toy-ttl 2ms (from WARREN_TOY_TTL): must be at least 1s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range tc.env {
				t.Setenv(kv[0], kv[1])
			}
			_, err := Parse("user", "", backends, tc.args, &bytes.Buffer{})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant  %s", err, tc.want)
			}
		})
	}
	// The annotated error is still the original to errors.Is.
	t.Setenv("WARREN_REGISTRY", "zk")
	if _, err := Parse("user", "", backends, nil, &bytes.Buffer{}); !errors.Is(err, registry.ErrUnknownBackend) {
		t.Fatalf("err = %v, want it to wrap registry.ErrUnknownBackend", err)
	}
}

// A service's own settings are validated the same way.
func TestParseWith_SettingsValidationNamesTheVariable(t *testing.T) {
	t.Setenv("WARREN_MAX_CHARGE", "0")
	s := paySettings{MaxCharge: 100}
	_, err := ParseWith("pay", "v", backends, nil, &bytes.Buffer{}, ParseOptions{Settings: []any{&s}})
	if want := "config: --max-charge (from WARREN_MAX_CHARGE) must be positive"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %s", err, want)
	}
}
