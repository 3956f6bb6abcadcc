package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/zk"
)

var _ registry.Catalog = (*Registry)(nil)

// Services implements registry.Catalog: the services under the root that
// have at least one instance znode (their persistent parents stay after
// the last instance goes), sorted. It reads the root's children and then
// each one's, so it costs one read per service.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, registry.ErrClosed
	}
	dir := path.Join(r.cfg.root, "services")
	names, _, err := r.conn.ChildrenContext(ctx, dir)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("zookeeper: list services under %s: %w", dir, r.withConnectError(err))
	}
	var out []string
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !registry.ValidName(name) {
			continue
		}
		_, stat, err := r.conn.ExistsContext(ctx, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("zookeeper: read %s: %w", path.Join(dir, name), err)
		}
		if stat != nil && stat.NumChildren > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
