package etcd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

func parseBackend(t *testing.T, args ...string) registry.Settings {
	t.Helper()
	return registrytest.ParseBackend(t, Backend(), args...)
}

func TestBackend_OpensARegistryFromItsFlags(t *testing.T) {
	prefix := testPrefix(t)
	s := parseBackend(t, "--etcd-endpoints="+strings.Join(shared.Endpoints(), ","), "--etcd-prefix="+prefix, "--etcd-ttl=2s")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(testCtx(t), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Register(testCtx(t), testInstance(8080)); err != nil {
		t.Fatal(err)
	}
	resp, err := rawClient(t, shared).Get(context.Background(), "/"+prefix+"/services/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("keys under the flag's prefix: %v, %v", resp, err)
	}
}

func TestBackend_BadFlagsAreNamedAndSecretsNeverPrinted(t *testing.T) {
	for args, want := range map[string]string{
		"--etcd-ttl=100ms":          "--etcd-ttl",
		"--etcd-endpoints=,":        "--etcd-endpoints",
		"--etcd-cert=c.pem":         "--etcd-key",
		"--etcd-dial-timeout=0s":    "--etcd-dial-timeout",
		"--etcd-request-timeout=0s": "--etcd-request-timeout",
		// Accepted by clientv3, then dialled in vain until every request
		// timed out; a tester's typo.
		"--etcd-endpoints=foo:bar:baz":             `--etcd-endpoints: "foo:bar:baz"`,
		"--etcd-endpoints=127.0.0.1":               "missing port",
		"--etcd-endpoints=127.0.0.1:0":             `port "0"`,
		"--etcd-endpoints=ftp://127.0.0.1:2379":    `scheme "ftp"`,
		"--etcd-endpoints=http://127.0.0.1:2379/x": "a path",
		"--etcd-endpoints=:2379":                   "no host",
		// Its own region as a failover: silently never failing over
		// (report j48d); the default prefix is "warren".
		"--etcd-failover-prefixes=/warren/": `--etcd-failover-prefixes: "/warren/" is the own --etcd-prefix`,
		// Refused by New only, exit 1, as "etcd: empty key prefix" (j53d 10).
		"--etcd-prefix=/": `--etcd-prefix "/": want a key prefix such as warren`,
		"--etcd-prefix=":  `--etcd-prefix "": want a key prefix`,
	} {
		if err := parseBackend(t, args).Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to name %s", args, err, want)
		}
	}
	s := parseBackend(t, "--etcd-username=ada", "--etcd-password=hunter2")
	if got := fmt.Sprintf("%v %+v", s, s); strings.Contains(got, "hunter2") || !strings.Contains(got, "ada") {
		t.Fatalf("settings print as %s", got)
	}
}

// --etcd-failover-prefixes makes the Registry's instancers regional: the
// own prefix first, then the others (registry.Failover).
func TestBackend_FailoverPrefixesMakeARegionalInstancer(t *testing.T) {
	prefix := testPrefix(t)
	s := parseBackend(t, "--etcd-endpoints="+strings.Join(shared.Endpoints(), ","), "--etcd-prefix="+prefix+"-eu",
		"--etcd-failover-prefixes="+prefix+"-us")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(testCtx(t), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in, err := r.Instancer(testCtx(t), "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	if _, ok := in.(*registry.Failover); !ok {
		t.Fatalf("Instancer is %T, want *registry.Failover", in)
	}
	if _, err := New(testCtx(t), WithPrefix("eu"), WithFailoverPrefixes("eu")); err == nil {
		t.Fatal("a failover prefix equal to the own one was accepted")
	}
}

// New refuses, naming it, an endpoint clientv3 would take and then dial
// in vain until registration timed out with "context deadline exceeded"
// (a library user who calls New directly, not through the flags).
func TestNew_RefusesAMalformedEndpoint(t *testing.T) {
	for _, ep := range []string{"http://[::bad", "", "foo:bar:baz", "127.0.0.1", "grpc://127.0.0.1:2379"} {
		r, err := New(context.Background(), WithEndpoints(ep))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("etcd: endpoint %q", ep)) {
			t.Errorf("New(WithEndpoints(%q)) = %v; want an error naming the endpoint", ep, err)
		}
		if r != nil {
			r.Close()
		}
	}
	for _, ep := range []string{"127.0.0.1:2379", "http://127.0.0.1:2379", "https://etcd.example:2379/", "unix:///run/etcd.sock"} {
		r, err := New(context.Background(), WithEndpoints(ep))
		if err != nil {
			t.Errorf("New(WithEndpoints(%q)) = %v; want it accepted", ep, err)
			continue
		}
		r.Close()
	}
}

// A negative or zero dial timeout or keepalive is refused by New, naming
// it, as the other durations are (report j48b F11: -1 was taken).
func TestNew_RefusesNonPositiveDialTimeoutAndKeepAlive(t *testing.T) {
	for name, opt := range map[string]Option{
		"dial timeout": WithDialTimeout(-1),
		"keepalive":    WithDialKeepAlive(0, time.Second),
	} {
		r, err := New(context.Background(), opt)
		if err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("New with a bad %s = %v; want it refused", name, err)
		}
		if r != nil {
			r.Close()
		}
	}
}

// A failover prefix's reader names its prefix in its log lines; the own
// prefix's reader does not (its lines are as before).
func TestInstancerLogger_NamesAFailoverPrefix(t *testing.T) {
	var buf strings.Builder
	cfg := defaultConfig()
	cfg.logger = log.NewLogfmtLogger(&buf)
	instancerLogger(cfg, "user", servicePrefix(cfg.prefix, "user")).Log("msg", "own")
	instancerLogger(cfg, "user", servicePrefix("warren-b", "user")).Log("msg", "other")
	if got := buf.String(); got != "service=user msg=own\nservice=user prefix=/warren-b/services/user/ msg=other\n" {
		t.Errorf("log lines:\n%s", got)
	}
}
