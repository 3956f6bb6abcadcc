// Package metrics is Warren's Prometheus instrumentation. It implements the
// small observer interfaces the other packages expose (client.Observer,
// registry.Observer, registry.StatusReporter read at scrape time) and an
// HTTP middleware for servers, so no other package imports Prometheus.
//
// Everything registers on a *prometheus.Registry the caller makes and
// passes in; nothing touches Prometheus's global default registry. Handler
// serves that registry on /metrics next to /debug/pprof/* (or alone:
// WithoutProfiles), for the debug listener (app.WithDebugListener). The
// series and what they mean are listed in docs/observability.md.
package metrics

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series.
const Namespace = "warren"

// NewRegistry returns a registry with the Go runtime and process
// collectors, the usual base of a service's /metrics.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// HandlerOption configures Handler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct{ noProfiles bool }

// WithoutProfiles leaves /debug/pprof/* out: the handler serves /metrics
// only (404 for the rest), for a port a scraper reaches but that should
// not hand out heap dumps, goroutine stacks and the command line.
func WithoutProfiles() HandlerOption { return func(c *handlerConfig) { c.noProfiles = true } }

// Handler serves g on /metrics and the runtime profiles on /debug/pprof/*
// (WithoutProfiles: /metrics only). It is meant for a listener of its own,
// bound to loopback or an admin network: profiles reveal a lot about a
// process.
func Handler(g prometheus.Gatherer, opts ...HandlerOption) http.Handler {
	var cfg handlerConfig
	for _, o := range opts {
		o(&cfg)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	if cfg.noProfiles {
		return mux
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
