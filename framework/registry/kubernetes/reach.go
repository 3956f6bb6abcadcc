package kubernetes

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// reachability wraps the client's transport to say when the apiserver
// is lost and when it answers again, once per change. client-go retries
// a broken watch or a refused list by itself, without calling the
// informers' watch error handler, so an apiserver restart or outage left
// no trace in the service's log while discovery served its last set.
// Lost is a request that fails, or a watch whose stream breaks (not one
// that ends, as the apiserver ends every watch after its timeout, nor
// one the client stops).
type reachability struct {
	rt     http.RoundTripper
	logger log.Logger
	down   atomic.Bool
	// listed reports whether discovery holds a set (the informers' first
	// listing is done); nil until they start. With none, a loss is not
	// "keeping the last set" (report j56a F6).
	listed *atomic.Pointer[func() bool]
}

func watchReachability(logger log.Logger, listed *atomic.Pointer[func() bool]) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return &reachability{rt: rt, logger: logger, listed: listed}
	}
}

func (r *reachability) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	switch {
	case err != nil:
		if req.Context().Err() == nil { // not the client's own cancel
			r.lost(req, err)
		}
	case r.down.Swap(false):
		level.Info(r.logger).Log("msg", "kubernetes apiserver answers again", "host", req.URL.Host)
	}
	if err == nil && req.URL.Query().Get("watch") == "true" {
		resp.Body = &watchBody{ReadCloser: resp.Body, r: r, req: req}
	}
	return resp, err
}

func (r *reachability) lost(req *http.Request, err error) {
	if !r.down.Swap(true) {
		msg := "kubernetes apiserver not reachable; no instances known yet, discovery has none to serve until it answers (client-go retries)"
		if f := r.listed.Load(); f != nil && (*f)() {
			msg = "kubernetes apiserver lost; discovery keeps the last set and retries within 5 s"
		}
		level.Warn(r.logger).Log("msg", msg, "host", req.URL.Host, "err", err)
	}
}

// watchBody notes a watch stream that breaks.
type watchBody struct {
	io.ReadCloser
	r      *reachability
	req    *http.Request
	closed atomic.Bool // by the client: what follows is no loss
}

func (b *watchBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !b.closed.Load() && b.req.Context().Err() == nil {
		b.r.lost(b.req, err)
	}
	return n, err
}

func (b *watchBody) Close() error {
	b.closed.Store(true)
	return b.ReadCloser.Close()
}
