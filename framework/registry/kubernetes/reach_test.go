package kubernetes_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// An apiserver restart is in the service's log: once when it stops
// answering, once when it answers again. client-go retries a refused
// list or watch by itself, so without the transport's note a tester saw
// no line at all while discovery served its last set.
func TestRegistry_AnApiserverOutageIsLoggedOncePerChange(t *testing.T) {
	logs := &syncbuf.Buffer{}
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(testCluster(t).Config()),
		kubernetes.WithNamespace(kubetest.Namespace), kubernetes.WithLogger(log.NewLogfmtLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in, err := r.Instancer(ctxT(t, wait), uniq("reach"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	// Listed and watching before the restart: the informers start with
	// the first instancer.
	registrytest.Record(t, in).WaitFor(t, wait, "the first set", func(ev sd.Event) bool { return ev.Err == nil })
	if err := testCluster(t).RestartAPIServer(ctxT(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for !strings.Contains(logs.String(), "kubernetes apiserver answers again") {
		if time.Now().After(deadline) {
			t.Fatalf("no line saying the apiserver answers again within %s:\n%s", wait, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "kubernetes apiserver lost"); n != 1 {
		t.Fatalf("%d lines saying the apiserver was lost, for one restart; want 1:\n%s", n, logs)
	}
}

// A process whose apiserver never answered has no set to keep: the loss
// line says no instances are known yet, not "keeps the last set" (report
// j56a F6). The restart above, after a first set, keeps the old line.
func TestRegistry_AnApiserverNeverReachedSaysNoInstancesKnownYet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connections refused from now on
	logs := &syncbuf.Buffer{}
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(&rest.Config{Host: "http://" + addr}),
		kubernetes.WithNamespace("default"), kubernetes.WithInitialWait(100*time.Millisecond), kubernetes.WithLogger(log.NewLogfmtLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in, err := r.Instancer(ctxT(t, wait), "never")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	deadline := time.Now().Add(wait)
	for !strings.Contains(logs.String(), "level=warn msg=\"kubernetes apiserver") {
		if time.Now().After(deadline) {
			t.Fatalf("no line saying the apiserver is not reachable within %s:\n%s", wait, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "no instances known yet") || strings.Contains(logs.String(), "keeps the last set") {
		t.Fatalf("want the loss line to say no instances are known yet, not that a last set is kept:\n%s", logs)
	}
}
