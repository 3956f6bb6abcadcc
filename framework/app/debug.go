package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/httptransport"
)

// debugServer is the debug listener (WithDebugListener): its own
// http.Server and one goroutine, owned by the App, which ends on close.
type debugServer struct {
	ln     net.Listener
	srv    *http.Server
	served chan struct{}
}

// debugHandler is the debug listener's handler behind its Host check:
// besides IP addresses and localhost it answers to its own listen host
// and to advertised, the host of the /metrics URL published with the
// instance, so scrapers that follow discovery are served
// (WithDebugAllowedHosts).
func (a *App) debugHandler(advertised string) http.Handler {
	hosts := append([]string{advertised}, a.opts.debugHosts...)
	if h, _, err := net.SplitHostPort(a.opts.debugAddr); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return httptransport.AllowedHosts(a.opts.debugHandler, "--debug-allowed-hosts", hosts...)
}

func startDebug(addr string, h http.Handler, readHeader, idle time.Duration, logger log.Logger) (*debugServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener on %s: %w", addr, err)
	}
	d := &debugServer{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeader,
			IdleTimeout:       idle,
			MaxHeaderBytes:    64 << 10,
		},
		served: make(chan struct{}),
	}
	go func() {
		defer close(d.served)
		// The debug listener is best effort: the service goes on without
		// it, but says so.
		if err := d.srv.Serve(httptransport.JSONErrors(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			level.Error(logger).Log("msg", "debug listener stopped; /metrics and pprof are gone", "addr", ln.Addr(), "err", err)
		}
	}()
	return d, nil
}

func (d *debugServer) close() {
	d.srv.Close()
	<-d.served
}
