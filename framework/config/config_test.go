package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log/level"
)

func TestParse_FlagsBeatEnvironmentBeatsDefaults(t *testing.T) {
	t.Setenv("WARREN_ZONE", "eu-1")
	t.Setenv("WARREN_LISTEN", "127.0.0.1:9000")
	t.Setenv("WARREN_ETCD_ENDPOINTS", "a:1, b:2")
	c, err := Parse("user", "1.0", []string{"--listen", "127.0.0.1:0", "--tags", "x,y"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:0" || c.Zone != "eu-1" || strings.Join(c.EtcdEndpoints, "|") != "a:1|b:2" ||
		strings.Join(c.Tags, "|") != "x|y" || c.EtcdTTL != 10*time.Second || c.Service != "user" ||
		c.ClientAttemptTimeout != 2*time.Second {
		t.Fatalf("config %+v", c)
	}
}

func TestParse_HelpListsEveryFlagWithItsVariable(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse("user", "1.0", []string{"--help"}, &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"--listen", "WARREN_LISTEN", "--etcd-endpoints", "WARREN_ETCD_ENDPOINTS", "WARREN_CONSUL_TOKEN", "--grace"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParse_BadValuesGetClearErrors(t *testing.T) {
	for args, want := range map[string]string{
		"--registry=zookeeper":         "--registry",
		"--etcd-ttl=100ms":             "--etcd-ttl",
		"--log-format=xml":             "--log-format",
		"--log-level=loud":             "--log-level",
		"--consul-check=tcp":           "--consul-check",
		"--weight=-2":                  "--weight",
		"--max-body-bytes=0":           "--max-body-bytes",
		"--client-attempt-timeout=-1s": "--client-attempt-timeout",
		"--grace=soon":                 "grace",
		"--no-such-flag":               "no-such-flag",
		"--listen=:1 extra-arg":        "unexpected arguments",
	} {
		_, err := Parse("user", "", strings.Fields(args), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", args, err, want)
		}
	}
}

func TestRedacted_HidesSecrets(t *testing.T) {
	c := Default("x", "")
	c.EtcdPassword, c.ConsulToken = "hunter2", "s3cr3t"
	r := c.Redacted()
	if strings.Contains(r.EtcdPassword+r.ConsulToken, "hunter2") || strings.Contains(r.ConsulToken, "s3cr3t") {
		t.Fatalf("%+v", r)
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
