package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/climit"
	"github.com/warren-mesh/warren/framework/endpointer"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/internal/downstream"
)

// InstanceFactory is the client side of a transport other than HTTP
// (package grpcclient is one): it makes the endpoint that calls one
// instance, from the instance's record (it picks the endpoint of its own
// scheme, registry.Instance.Endpoint), and a closer the client runs once
// the instance has left discovery and its last call has returned. The
// endpoint gets whatever the transport passes to Client.Do.
type InstanceFactory func(inst registry.Instance) (endpoint.Endpoint, io.Closer, error)

// WithInstanceFactory makes the client call instances through f instead
// of HTTP: discovery, balancing, retries, the budget, outlier ejection, the
// concurrency limit and the snapshot stay the same. Such a client is used
// through Do (by the transport's package); Call and Invoke speak HTTP only.
func WithInstanceFactory(f InstanceFactory) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("client.WithInstanceFactory(nil)")
		}
		c.instanceFactory = f
		return nil
	}
}

// InstanceFailure is implemented by errors that know whether they count
// against the instance's health (outlier ejection, the balancer's view of
// it): a transport's error type says so for its own statuses.
type InstanceFailure interface {
	InstanceFailure() bool
}

// Do sends req to one instance's endpoint, made by the client's
// InstanceFactory, through the same machinery as Invoke: the concurrency
// limit, the retry policy (idempotent says whether a failure after which
// the server may have acted is retried) and the balancer, which avoids the
// previous attempt's instance. It returns the endpoint's response. An
// idempotent call may be hedged (retry.WithHedging): the endpoint must then
// be safe to call twice at once with the same req.
func (c *Client) Do(ctx context.Context, req any, idempotent bool) (resp any, err error) {
	return c.do(ctx, "", req, idempotent)
}

// do is Do for a call of the API method named method ("" if unnamed),
// which picks its retry policy (methodPolicy).
func (c *Client) do(ctx context.Context, method string, req any, idempotent bool) (resp any, err error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("client %s: %w", c.service, ErrClosed)
	}
	defer downstream.Begin(ctx)() // as in Invoke
	var d *doCall
	if c.limiter != nil {
		tok, ok := c.limiter.Acquire()
		if !ok {
			return nil, fmt.Errorf("client %s: %w", c.service, climit.ErrLimited)
		}
		d = &doCall{c: c, req: req}
		defer func() { tok.Release(c.limitOutcome(err, &d.note)) }()
	} else {
		d = &doCall{c: c, req: req}
	}
	if err = c.methodPolicy(method).Do(ctx, idempotent, d.attempt); err != nil {
		if errors.Is(err, retry.ErrBudgetExhausted) {
			c.obs.RetryBudgetExhausted(c.service)
		}
		return nil, c.unreachable(ctx, err)
	}
	return d.resp, nil
}

// doCall is what the attempts of one Do share, held in one allocation.
type doCall struct {
	c    *Client
	req  any
	last atomic.Pointer[balancer.Target] // the latest attempt's instance
	note callNote                        // its attempts' timeouts, for the concurrency limit
	won  atomic.Bool                     // a hedge and the attempt it hedged may both answer
	resp any                             // the winner's; read only after policy.Do, which waits for every attempt
}

func (d *doCall) attempt(ctx context.Context, _ int) error {
	d.c.countAttempt(d.note.begin())
	r, err := d.c.attemptAny(ctx, d.req, &d.last, &d.note)
	d.note.ended(err)
	if err == nil && d.won.CompareAndSwap(false, true) {
		d.resp = r
	}
	return err
}

// instanceFactory adapts f to the endpointer (which parsed the instance)
// and reports acquisitions, picks and releases to the observer, as the
// HTTP factory does.
func instanceFactory(cfg config, service string, f InstanceFactory) endpointer.InstanceFactory {
	live := newLiveIDs()
	instObs, _ := cfg.obs.(InstanceObserver)
	return func(inst registry.Instance) (endpoint.Endpoint, io.Closer, error) {
		ep, closer, err := f(inst)
		if err != nil {
			return nil, nil, err
		}
		id := inst.ID // not inst: its metadata map would stay alive too
		acquired(instObs, service, id, live.add(id))
		call := func(ctx context.Context, req any) (any, error) {
			cfg.obs.Picked(service, id) // inside the target's in-flight window
			return ep(ctx, req)
		}
		return call, closerFunc(func() error {
			var err error
			if closer != nil {
				err = closer.Close()
			}
			if live.done(id) { // as the HTTP closer: not while a newer record serves it
				cfg.obs.InstanceReleased(service, id)
			}
			return err
		}), nil
	}
}

// TLSOf returns the TLS configuration that opts set with WithTLS (nil if
// none), so another transport's client given the same options (bootstrap's
// Deps.ClientOptions) speaks TLS with the same CA and certificate.
func TLSOf(opts ...Option) *tls.Config { return configOf(opts).tls }

// PlaintextPeersOf reports whether opts allow plaintext instances with TLS
// set (WithPlaintextPeers), for another transport's client given the same
// options.
func PlaintextPeersOf(opts ...Option) bool { return configOf(opts).plaintextOK }

// configOf applies opts to an empty config, for the ...Of functions.
func configOf(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			_ = o(&c) // errors are New's to report
		}
	}
	return c
}
