// Command etcd is the etcd server at the version this module depends on
// (go.etcd.io/etcd/server/v3), built from source so that the compose
// deployment's etcd image (deploy/compose) needs no image pull: it is a
// static binary in a FROM-scratch image. Every flag is etcd's own.
//
// `etcd healthcheck [URL]` is the image's health check, since the image has
// no shell, curl or etcdctl: it GETs URL (default
// http://127.0.0.1:2379/readyz) and exits 0 on 200 OK.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Args[2:], os.Stderr))
	}
	etcdmain.Main(os.Args)
}

func healthcheck(args []string, out io.Writer) int {
	url := "http://127.0.0.1:2379/readyz"
	switch len(args) {
	case 0:
	case 1:
		url = args[0]
	default:
		fmt.Fprintln(out, "usage: etcd healthcheck [URL]")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(out, "etcd healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(out, "etcd healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(out, "etcd healthcheck: %s: %s %s\n", url, resp.Status, body)
		return 1
	}
	return 0
}
