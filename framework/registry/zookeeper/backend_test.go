package zookeeper

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

func parseBackend(t *testing.T, args ...string) registry.Settings {
	t.Helper()
	return registrytest.ParseBackend(t, Backend(), args...)
}

func TestBackend_OpensARegistryFromItsFlags(t *testing.T) {
	root := testRoot(t)
	s := parseBackend(t, "--zookeeper-servers="+shared.Addr(), "--zookeeper-root="+root, "--zookeeper-session-timeout=2s")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctxFor(t, 30*time.Second), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Register(ctxFor(t, 30*time.Second), testInstance("flags", 1)); err != nil {
		t.Fatal(err)
	}
	kids, _, err := rawConn(t, shared.Addr()).Children(root + "/services/flags")
	if err != nil || len(kids) != 1 || kids[0] != "flags-1" {
		t.Fatalf("znodes under the flag's root: %v, %v", kids, err)
	}
}

func TestBackend_BadFlagsAreNamedAndSecretsNeverPrinted(t *testing.T) {
	for args, want := range map[string]string{
		"--zookeeper-session-timeout=100ms": "--zookeeper-session-timeout",
		"--zookeeper-servers=,":             "--zookeeper-servers",
		"--zookeeper-cert=c.pem":            "--zookeeper-key",
		"--zookeeper-root=warren":           "--zookeeper-root",
		"--zookeeper-password=x":            "--zookeeper-username",
		// Reports j47b: a Java chroot, a bad port, odd roots.
		"--zookeeper-servers=127.0.0.1:2181,127.0.0.1:2182/app": "a chroot in the connect string (\"/app\") is not supported",
		"--zookeeper-servers=127.0.0.1:notaport":                "want host:port with a port",
		"--zookeeper-servers=127.0.0.1":                         "want host:port",
		"--zookeeper-root=/a//b":                                "--zookeeper-root",
		"--zookeeper-root=/zookeeper/warren":                    "ZooKeeper's own tree",

		// Report j53d 4: 597h is past int32 milliseconds; it was taken,
		// then every connection failed against a healthy server.
		"--zookeeper-session-timeout=597h": "--zookeeper-session-timeout 597h0m0s: want from 1s to 596h31m23s",
		// Report j53d 5: a URL was read as a chroot ("//127.0.0.1:2181").
		"--zookeeper-servers=http://127.0.0.1:2181":         `--zookeeper-servers: server "http://127.0.0.1:2181": has a scheme ("http"); want host:port`,
		"--zookeeper-servers=127.0.0.1:2181,tls://zk2:2281": `server "tls://zk2:2281": has a scheme ("tls"); want host:port`,
		"--zookeeper-servers=zk://ada:hunter2@zk:2181":      `server "zk://xxxxx@zk:2181": has a scheme ("zk")`,
	} {
		err := parseBackend(t, args).Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to name %s", args, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", args, err)
		}
	}
	s := parseBackend(t, "--zookeeper-username=ada", "--zookeeper-password=hunter2")
	if got := fmt.Sprintf("%v %+v", s, s); strings.Contains(got, "hunter2") || !strings.Contains(got, "ada") {
		t.Fatalf("settings print as %s", got)
	}
}
