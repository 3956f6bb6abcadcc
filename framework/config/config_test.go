package config

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/registry"
)

// toySettings is a backend's settings as config sees them: flags bound by
// the backend, validated and opened by it.
type toySettings struct {
	endpoints []string
	ttl       time.Duration
	secret    string
}

func (s *toySettings) Validate() error {
	if s.ttl < time.Second {
		return fmt.Errorf("--toy-ttl %s: must be at least 1s", s.ttl)
	}
	return nil
}

func (s *toySettings) Open(context.Context, registry.OpenOptions) (registry.Registry, error) {
	return nil, errors.New("toy: not for opening")
}

func toyBackend(name string) registry.Backend {
	return registry.Backend{Name: name, Usage: name + " for tests", Bind: func(fs *flag.FlagSet) registry.Settings {
		s := &toySettings{endpoints: []string{"127.0.0.1:1"}, ttl: 10 * time.Second}
		fs.Var(registry.ListFlag{P: &s.endpoints}, name+"-endpoints", "endpoints")
		fs.DurationVar(&s.ttl, name+"-ttl", s.ttl, "ttl")
		fs.StringVar(&s.secret, name+"-token", "", "a secret")
		return s
	}}
}

var backends = registry.Backends{toyBackend("toy"), toyBackend("other")}

func TestParse_FlagsBeatEnvironmentBeatsDefaults(t *testing.T) {
	t.Setenv("WARREN_ZONE", "eu-1")
	t.Setenv("WARREN_LISTEN", "127.0.0.1:9000")
	t.Setenv("WARREN_TOY_ENDPOINTS", "a:1, b:2")
	c, err := Parse("user", "1.0", backends, []string{"--listen", "127.0.0.1:0", "--tags", "x,y", "--toy-ttl", "3s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	toy, _ := c.RegistrySettings.(*toySettings)
	if c.Listen != "127.0.0.1:0" || c.Zone != "eu-1" || c.Registry != "toy" || toy == nil ||
		strings.Join(toy.endpoints, "|") != "a:1|b:2" || toy.ttl != 3*time.Second ||
		strings.Join(c.Tags, "|") != "x|y" || c.Service != "user" ||
		c.ClientAttemptTimeout != 0 {
		t.Fatalf("config %+v", c)
	}
}

func TestParse_RegistryPicksTheBackendByName(t *testing.T) {
	t.Setenv("WARREN_REGISTRY", "other")
	c, err := Parse("user", "", backends, []string{"--other-ttl=2s", "--toy-ttl=5s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := c.RegistrySettings.(*toySettings); c.Registry != "other" || !ok || s.ttl != 2*time.Second {
		t.Fatalf("registry %q settings %+v", c.Registry, c.RegistrySettings)
	}
	// Only the selected backend is validated: a bad value of another one
	// does not stop the process.
	if _, err := Parse("user", "", backends, []string{"--registry=other", "--toy-ttl=1ms"}, &bytes.Buffer{}); err != nil {
		t.Fatalf("bad flag of an unselected backend: %v", err)
	}
}

func TestParse_BackendListProblemsAreErrorsNotPanics(t *testing.T) {
	clash := registry.Backend{Name: "log", Bind: func(fs *flag.FlagSet) registry.Settings {
		fs.String("log-level", "", "collides with the core flag")
		return &toySettings{ttl: time.Second}
	}}
	stray := registry.Backend{Name: "zk", Bind: func(fs *flag.FlagSet) registry.Settings {
		fs.String("servers", "", "outside the zk- namespace")
		return &toySettings{ttl: time.Second}
	}}
	for name, list := range map[string]registry.Backends{
		"clash":     {clash},
		"stray":     {stray},
		"duplicate": {toyBackend("toy"), toyBackend("toy")},
		"bad name":  {toyBackend("Toy")},
	} {
		if _, err := Parse("user", "", list, nil, &bytes.Buffer{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := Parse("user", "", nil, nil, &bytes.Buffer{})
	if !errors.Is(err, registry.ErrUnknownBackend) || !strings.Contains(err.Error(), "no registry backend") {
		t.Errorf("no backends: err = %v", err)
	}
}

func TestParse_HelpListsEveryFlagWithItsVariable(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse("user", "1.0", backends, []string{"--help"}, &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"--listen", "WARREN_LISTEN", "--toy-endpoints", "WARREN_TOY_ENDPOINTS", "WARREN_OTHER_TOKEN", "--grace", "toy or other"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParse_BadValuesGetClearErrors(t *testing.T) {
	for args, want := range map[string]string{
		"--registry=zookeeper":                    "--registry",
		"--toy-ttl=100ms":                         "--toy-ttl",
		"--log-format=xml":                        "--log-format",
		"--log-level=loud":                        "--log-level",
		"--weight=-2":                             "--weight",
		"--max-body-bytes=0":                      "--max-body-bytes",
		"--client-attempt-timeout=-1s":            "--client-attempt-timeout",
		"--shed-waiting=-1":                       "--shed-waiting",
		"--load-shedding=false --shed-waiting=16": "needs --load-shedding",
		"--grace=soon":                            "grace",
		"--withdraw-timeout=0s":                   "--withdraw-timeout",
		"--access-log=some":                       "--access-log",
		"--trace-sample-ratio=0":                  "--trace-sample-ratio",
		"--no-such-flag":                          "no-such-flag",
		"--listen=:1 extra-arg":                   "unexpected arguments",
	} {
		_, err := Parse("user", "", backends, strings.Fields(args), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", args, err, want)
		}
	}
}

func TestLogger_JSONAndLevelFilter(t *testing.T) {
	c := Default("x", "")
	c.LogFormat, c.LogLevel = "json", "warn"
	var buf bytes.Buffer
	l := c.Logger(&buf)
	level.Info(l).Log("msg", "dropped")
	if buf.Len() != 0 {
		t.Fatalf("info logged at warn level: %s", buf.String())
	}
	level.Warn(l).Log("msg", "kept")
	if !strings.HasPrefix(buf.String(), "{") || !strings.Contains(buf.String(), `"msg":"kept"`) {
		t.Fatalf("json warn line: %s", buf.String())
	}
}

// A program's own defaults (what `svcgen new --port` records in a main)
// lose to the variable, which loses to the flag; --help shows them; a
// default for a flag that does not exist is an error, not ignored.
func TestParse_ProgramDefaultsLoseToVariableAndFlag(t *testing.T) {
	defs := []FlagDefault{{Flag: "listen", Value: ":9999"}, {Flag: "registry", Value: "other"}}
	c, err := Parse("user", "1", backends, nil, &bytes.Buffer{}, defs...)
	if err != nil || c.Listen != ":9999" || c.Registry != "other" {
		t.Fatalf("defaults: listen %q registry %q, %v", c.Listen, c.Registry, err)
	}
	t.Setenv("WARREN_LISTEN", ":7777")
	if c, err = Parse("user", "1", backends, nil, &bytes.Buffer{}, defs...); err != nil || c.Listen != ":7777" {
		t.Fatalf("variable over default: listen %q, %v", c.Listen, err)
	}
	if c, err = Parse("user", "1", backends, []string{"--listen", ":5555"}, &bytes.Buffer{}, defs...); err != nil || c.Listen != ":5555" {
		t.Fatalf("flag over variable: listen %q, %v", c.Listen, err)
	}
	var help bytes.Buffer
	if _, err := Parse("user", "1", backends, []string{"--help"}, &help, defs...); !errors.Is(err, ErrHelp) || !strings.Contains(help.String(), ":9999") {
		t.Fatalf("--help (%v) does not show the program's default:\n%s", err, help.String())
	}
	if _, err := Parse("user", "1", backends, nil, &bytes.Buffer{}, FlagDefault{Flag: "no-such-flag", Value: "x"}); err == nil {
		t.Fatal("a default for an unknown flag was accepted")
	}
}

// A bad value, from a flag, a variable or the --config file, is one error
// that names the flag with two dashes, where the value came from and the
// form wanted; nothing else is printed (no usage dump to scroll it away).
func TestParse_BadValueSaysTheFormWantedWithoutUsageDump(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("grace: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  [2]string
		want string
	}{
		{"flag duration", []string{"--grace", "5"}, [2]string{}, `config: --grace "5": want a duration such as 5s or 1m30s`},
		{"flag bool", []string{"--self-check=maybe"}, [2]string{}, `config: --self-check "maybe": want true or false`},
		{"flag int", []string{"--weight", "heavy"}, [2]string{}, `config: --weight "heavy": want an integer`},
		{"backend flag", []string{"--toy-ttl", "10"}, [2]string{}, `config: --toy-ttl "10": want a duration such as 5s or 1m30s`},
		{"variable", nil, [2]string{"WARREN_DRAIN_TIMEOUT", "abc"}, `config: --drain-timeout "abc" (from WARREN_DRAIN_TIMEOUT): want a duration such as 5s or 1m30s`},
		{"bytes", nil, [2]string{"WARREN_MAX_BODY_BYTES", "1MB"}, `config: --max-body-bytes "1MB" (from WARREN_MAX_BODY_BYTES): want a whole number of bytes such as 1048576`},
		{"config file", []string{"--config", file}, [2]string{}, `config: --grace "5" (key grace of ` + file + `): want a duration such as 5s or 1m30s`},
		{"unknown flag", []string{"--nope"}, [2]string{}, `config: unknown flag --nope (--help lists every flag)`},
		{"no value", []string{"--grace"}, [2]string{}, `config: --grace needs a value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			var out bytes.Buffer
			_, err := Parse("user", "", backends, tc.args, &out)
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant  %s", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed besides the error:\n%s", out.String())
			}
		})
	}
}
