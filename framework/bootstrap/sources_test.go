package bootstrap

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Errors about files and directories the flags name, met after the
// configuration parsed (a TLS file missing or not PEM, an unwritable
// --snapshot-dir), named the flag but not where its value came from, as
// config's validation errors do since 33aafe3 (task H1): with a flag, a
// WARREN_* variable and a --config file, operators looked in the wrong one.
func TestRun_FileErrorsNameTheValuesSource(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	notDir := filepath.Join(dir, "a-file")
	for _, f := range []string{garbage, notDir} {
		if err := os.WriteFile(f, []byte("not PEM\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "svc.yaml")
	if err := os.WriteFile(file, []byte("tls-cert: "+missing+"\ntls-key: "+missing+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(notDir, "sub")
	for _, tc := range []struct {
		name string
		args []string
		env  [][2]string
		want string
	}{
		{"service TLS, flags", []string{"--tls-cert", missing, "--tls-key", missing}, nil,
			"config: the service's TLS (--tls-cert, --tls-key, --tls-client-ca): tlsconf: load "},
		{"service TLS, variables", nil, [][2]string{{"WARREN_TLS_CERT", missing}, {"WARREN_TLS_KEY", missing}},
			"config: the service's TLS (--tls-cert (from WARREN_TLS_CERT), --tls-key (from WARREN_TLS_KEY), --tls-client-ca): tlsconf: load "},
		{"service TLS, flag and variable", []string{"--tls-cert", garbage}, [][2]string{{"WARREN_TLS_KEY", garbage}},
			"config: the service's TLS (--tls-cert, --tls-key (from WARREN_TLS_KEY), --tls-client-ca): tlsconf: load " + garbage},
		{"service TLS, config file", []string{"--config", file}, nil,
			"config: the service's TLS (--tls-cert (key tls-cert of " + file + "), --tls-key (key tls-key of " + file + "), --tls-client-ca): "},
		{"client CA, flag", []string{"--tls-ca", missing}, nil,
			"config: TLS of calls to other services (--tls-ca, else --tls-client-ca; "},
		{"client CA, variable, not PEM", nil, [][2]string{{"WARREN_TLS_CA", garbage}},
			"config: TLS of calls to other services (--tls-ca (from WARREN_TLS_CA), else --tls-client-ca; --tls-cert, --tls-key as the client certificate): tlsconf: " + garbage + " holds no PEM certificate"},
		{"snapshot dir, flag", []string{"--snapshot-dir", snap}, nil,
			`config: --snapshot-dir "` + snap + `": cannot write snapshots there: `},
		{"snapshot dir, variable", nil, [][2]string{{"WARREN_SNAPSHOT_DIR", snap}},
			`config: --snapshot-dir "` + snap + `" (from WARREN_SNAPSHOT_DIR): cannot write snapshots there: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range tc.env {
				t.Setenv(kv[0], kv[1])
			}
			var out bytes.Buffer
			args := append([]string{"--registry", "toy", "--listen", "127.0.0.1:0", "--grace", "0s"}, tc.args...)
			// The deadline ends a service that wrongly starts.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			want := strings.ReplaceAll(tc.want, `"`, `\"`) // as logfmt quotes it in err="…"
			if code := Run(ctx, "svc", "1", args, &out, hello, toys); code != 1 || !strings.Contains(out.String(), want) {
				t.Errorf("code %d, output %q\nwant exit 1 and %q", code, out.String(), tc.want)
			}
		})
	}
}

// healthcheck's own refusals name the source too; its TLS error named no
// flag at all ("tlsconf: load …").
func TestHealthcheck_ErrorsNameTheValuesSource(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		env  [][2]string
		want string
	}{
		{"listen, flag", []string{"--listen", "127.0.0.1:0"}, nil, `svc healthcheck: --listen "127.0.0.1:0" has no fixed port to probe`},
		{"listen, variable", nil, [][2]string{{"WARREN_LISTEN", "127.0.0.1:0"}},
			`svc healthcheck: --listen "127.0.0.1:0" (from WARREN_LISTEN) has no fixed port to probe`},
		{"TLS, flags", []string{"--listen", "127.0.0.1:1", "--tls-cert", missing, "--tls-key", missing}, nil,
			`svc healthcheck: the service's TLS (--tls-cert, --tls-key): tlsconf: load ` + missing},
		{"TLS, variables", []string{"--listen", "127.0.0.1:1"}, [][2]string{{"WARREN_TLS_CERT", missing}, {"WARREN_TLS_KEY", missing}},
			`svc healthcheck: the service's TLS (--tls-cert (from WARREN_TLS_CERT), --tls-key (from WARREN_TLS_KEY)): tlsconf: load ` + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range tc.env {
				t.Setenv(kv[0], kv[1])
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			args := append([]string{"healthcheck", "--registry", "toy"}, tc.args...)
			if code := Run(ctx, "svc", "1", args, &out, nil, toys); code != 2 || !strings.Contains(out.String(), tc.want) {
				t.Errorf("code %d, output %q\nwant exit 2 and %q", code, out.String(), tc.want)
			}
		})
	}
}
