package meshup

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
)

// startEdge runs a proxy in front of the mesh that follows its discovery
// (docs/edge.md): kind "nginx" starts Debian's nginx on a free loopback
// port, proxying /NAME/… to service NAME. stop stops the watcher, then
// nginx.
func startEdge(ctx context.Context, m *devmesh.Mesh, kind, dir string, out io.Writer) (url string, stop func(), err error) {
	if kind != "nginx" {
		return "", nil, fmt.Errorf("edge %q: the one edge proxy make up runs is nginx", kind)
	}
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: filepath.Join(dir, "edge-nginx"), Services: m.Services()})
	if err != nil {
		return "", nil, fmt.Errorf("edge: %w (make nginx installs it)", err)
	}
	r, err := nginx.NewRenderer()
	if err != nil {
		p.Stop()
		return "", nil, err
	}
	syncer, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		p.Stop()
		return "", nil, err
	}
	logger := log.With(log.NewLogfmtLogger(log.NewSyncWriter(out)), "svc", "edge-nginx")
	w, err := edge.NewWatcher(m.Discovery(), m.Services(), edge.WithLogger(logger))
	if err != nil {
		p.Stop()
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // owned by stop: ends when ctx is cancelled
		defer close(done)
		w.Run(ctx, func(ctx context.Context, snap edge.Snapshot) error {
			if err := syncer.Apply(ctx, snap); err != nil {
				return err
			}
			level.Info(logger).Log("msg", "nginx upstreams follow discovery", "instances", edge.Summary(snap))
			return nil
		})
	}()
	return p.URL(), func() { cancel(); <-done; p.Stop() }, nil
}
