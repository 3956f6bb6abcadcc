package regcli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// silentServer accepts connections on 127.0.0.1 and never answers, as a
// SIGSTOPped etcd does (the kernel completes the handshake). It returns
// its address; the connections close with the test.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() { // owned by the test: ends when ln closes
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// `warren ls` against a hung etcd said only "context deadline exceeded"
// after the timeout (report j57b F7): it names the endpoint and says it
// accepted the connection but did not answer.
func TestLs_AHungEtcdIsNamedAndSaidNotToAnswer(t *testing.T) {
	addr := silentServer(t)
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
