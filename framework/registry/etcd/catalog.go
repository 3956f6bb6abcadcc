package etcd

import (
	"context"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/registry"
)

var _ registry.Catalog = (*Registry)(nil)

// Services implements registry.Catalog: the names under the prefix's
// services/ directory that hold at least one key. It reads keys only, in
// one request.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("etcd registry: %w", ErrClosed)
	}
	root := "/" + r.cfg.prefix + "/services/"
	cli, err := r.client.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd: list services under %s: %w", root, err)
	}
	resp, err := cli.Get(ctx, root, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		// warren ls said only "context deadline exceeded" (report j47c):
		// say what a connection to the endpoints finds.
		if ctx.Err() != nil {
			err = r.explainGivingUp(err)
		} else {
			err = r.explain(cli, err)
		}
		return nil, fmt.Errorf("etcd: list services under %s: %w", root, err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		name, _, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), root), "/")
		if ok && registry.ValidName(name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
