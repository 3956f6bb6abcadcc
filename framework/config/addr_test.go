package config

import (
	"bytes"
	"strings"
	"testing"
)

// --advertise and --otlp-endpoint are checked at start, with the flag and
// the form wanted in the error, instead of failing later (or never).
func TestValidate_AdvertiseAndOTLPEndpointForms(t *testing.T) {
	for _, ok := range [][]string{
		{"--advertise", "10.0.0.5"}, {"--advertise", "10.0.0.5:8080"}, {"--advertise", "user.svc.local:0"},
		{"--advertise", ":8080"}, {"--advertise", "::1"}, {"--advertise", "[::1]:80"}, {"--advertise", "fe80::1%eth0"},
		// Loopback is one machine with a local registry (the demo, tests).
		{"--advertise", "127.0.0.1"}, {"--advertise", "localhost"}, {"--advertise", "localhost:8080"},
		{"--otlp-endpoint", "http://127.0.0.1:4317"}, {"--otlp-endpoint", "https://collector:4317"},
		{"--otlp-endpoint", "collector:4317"}, {"--otlp-endpoint", "collector"},
	} {
		if _, err := Parse("user", "", backends, ok, &bytes.Buffer{}); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []struct{ args, want string }{
		{"--advertise=http://127.0.0.1", `config: --advertise "http://127.0.0.1": has a scheme; want a host or host:port`},
		{"--advertise=bad host", `config: --advertise "bad host": not a host name or IP address; want a host or host:port`},
		{"--advertise=10.0.0.5:http", `config: --advertise "10.0.0.5:http": port "http" is not a number from 0 to 65535; want a host or host:port`},
		// The unspecified address was published: the self-check passes (on
		// this host it dials loopback), every caller elsewhere dials itself.
		{"--advertise=0.0.0.0", `config: --advertise "0.0.0.0": 0.0.0.0 is the unspecified address, which a service listens on (every interface) but callers cannot dial`},
		{"--advertise=0.0.0.0:8080", `config: --advertise "0.0.0.0:8080": 0.0.0.0 is the unspecified address`},
		{"--advertise=::", `config: --advertise "::": :: is the unspecified address`},
		{"--advertise=[::]:8080", `config: --advertise "[::]:8080": :: is the unspecified address`},
		{"--advertise=::ffff:0.0.0.0", `config: --advertise "::ffff:0.0.0.0": ::ffff:0.0.0.0 is the unspecified address`},
		{"--otlp-endpoint=not a url at all", `config: --otlp-endpoint "not a url at all": not a host name or IP address; want http://host:4317`},
		{"--otlp-endpoint=ht!tp://x", `config: --otlp-endpoint "ht!tp://x": not a URL; want http://host:4317`},
		{"--otlp-endpoint=grpc://x:4317", `config: --otlp-endpoint "grpc://x:4317": scheme "grpc"; want http://host:4317`},
		{"--otlp-endpoint=http://u:secret@x:4317", `config: --otlp-endpoint "http://xxxxx@x:4317": credentials in the URL; put them in OTEL_EXPORTER_OTLP_HEADERS`},
		// A query was accepted, though OTLP/gRPC never sends it, and the
		// token in it was printed when spans were dropped at exit.
		{"--otlp-endpoint=https://127.0.0.1:1/?token=secret", `config: --otlp-endpoint "https://127.0.0.1:1/?xxxxx": a query or fragment in the URL, which OTLP/gRPC does not send; put credentials in OTEL_EXPORTER_OTLP_HEADERS`},
		// A path was accepted and ignored: the OTLP/HTTP address
		// (4318, /v1/traces) given to an OTLP/gRPC exporter.
		{"--otlp-endpoint=http://collector:4318/v1/traces", `config: --otlp-endpoint "http://collector:4318/v1/traces": a path in the URL; Warren exports OTLP/gRPC`},
		{"--otlp-endpoint=https://127.0.0.1:1#secret", `config: --otlp-endpoint "https://127.0.0.1:1#xxxxx": a query or fragment`},
		{"--otlp-endpoint=u:secret@x:4317", `config: --otlp-endpoint "xxxxx@x:4317": credentials or a query`},
		{"--otlp-endpoint=ftp://u:secret@x:4317", `config: --otlp-endpoint "ftp://xxxxx@x:4317": scheme "ftp"`},
		{"--otlp-endpoint=http://u:secret@[::bad", `config: --otlp-endpoint "http://xxxxx@[::bad": not a URL`},
	} {
		_, err := Parse("user", "", backends, []string{bad.args}, &bytes.Buffer{})
		if err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("%s: err = %v\nwant it to start %s", bad.args, err, bad.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", bad.args, err)
		}
	}
}

// A malformed --listen, --debug-listen or --id failed only when the App
// used it, exit 1, without the flag's name ("listen on abc: missing port
// in address"; report j53d finding 10). Parse refuses it with the flag
// (bootstrap: exit 2).
func TestValidate_ListenAddressesAndIDNameTheFlag(t *testing.T) {
	for _, ok := range [][]string{
		{"--listen", ":0"}, {"--listen", "127.0.0.1:0"}, {"--listen", "[::1]:8080"}, {"--listen", "localhost:8080"},
		{"--debug-listen", "127.0.0.1:9100"}, {"--debug-listen", ""}, {"--id", "user-1"},
	} {
		if _, err := Parse("user", "", backends, ok, &bytes.Buffer{}); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []struct{ args, want string }{
		{"--listen=abc", `config: --listen "abc": no port; want host:port`},
		{"--listen=127.0.0.1:99999", `config: --listen "127.0.0.1:99999": port "99999" is not a number from 0 to 65535; want host:port`},
		{"--listen=http://127.0.0.1:8080", `config: --listen "http://127.0.0.1:8080": has a scheme; want host:port`},
		{"--debug-listen=abc", `config: --debug-listen "abc": no port; want host:port`},
		{"--debug-listen=127.0.0.1:-1", `config: --debug-listen "127.0.0.1:-1": port "-1" is not a number`},
		{"--id=a/b", `config: --id "a/b": invalid instance: instance ID "a/b" must not contain '/' or spaces`},
		{"--id=a b", `config: --id "a b": invalid instance`},
	} {
		_, err := Parse("user", "", backends, []string{bad.args}, &bytes.Buffer{})
		if err == nil || !strings.HasPrefix(err.Error(), bad.want) {
			t.Errorf("%s: err = %v\nwant it to start %s", bad.args, err, bad.want)
		}
	}
}

// A label with a space or CR an env file left was published as given:
// WARREN_ZONE="zone-a " registered "zone-a ", another zone to a caller
// configured with zone-a (report j53d finding 10).
func TestValidate_LabelsWithEdgeWhiteSpaceAreRefused(t *testing.T) {
	for _, bad := range []struct{ env, val, want string }{
		{"WARREN_ZONE", "zone-a ", `config: --zone "zone-a " (from WARREN_ZONE): leading or trailing white space`},
		{"WARREN_VERSION", "1.2.0\r", `config: --version "1.2.0\r" (from WARREN_VERSION): leading or trailing white space`},
		{"WARREN_ID", "user-1\r", `config: --id "user-1\r" (from WARREN_ID): leading or trailing white space`},
	} {
		t.Run(bad.env, func(t *testing.T) {
			t.Setenv(bad.env, bad.val)
			_, err := Parse("user", "", backends, nil, &bytes.Buffer{})
			if err == nil || !strings.HasPrefix(err.Error(), bad.want) {
				t.Errorf("%s=%q: err = %v\nwant it to start %s", bad.env, bad.val, err, bad.want)
			}
		})
	}
	t.Setenv("WARREN_ZONE", "zone-a")
	if _, err := Parse("user", "", backends, nil, &bytes.Buffer{}); err != nil {
		t.Fatalf("WARREN_ZONE=zone-a: %v", err)
	}
}
