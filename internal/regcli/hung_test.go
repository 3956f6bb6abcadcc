package regcli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/silent"
)

// `warren ls` against a hung etcd said only "context deadline exceeded"
// after the timeout (report j57b F7): it names the endpoint and says it
// accepted the connection but did not answer.
func TestLs_AHungEtcdIsNamedAndSaidNotToAnswer(t *testing.T) {
	addr := silent.Listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	e := Env{Stdout: &out, Stderr: &errOut, Backends: registry.Backends{etcd.Backend()}}
	err := Ls(ctx, e, []string{"--registry=etcd", "--etcd-endpoints=" + addr, "--timeout=1s"})
	if err == nil {
		t.Fatalf("ls against a silent server succeeded:\n%s", out.String())
	}
	if want := "etcd at " + addr + " accepted the connection but did not answer"; !strings.Contains(err.Error(), want) {
		t.Errorf("ls = %v\nwant it to say %q", err, want)
	}
}
