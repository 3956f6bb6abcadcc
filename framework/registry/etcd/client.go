package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/backoff"
)

// lazyClient is the Registry's one etcd client, which may not exist yet.
//
// clientv3.New with a user name authenticates before it returns: it waits
// up to the dial timeout for etcd to answer and fails if it does not. A
// Registry with credentials therefore makes its client in a goroutine of
// its own, retrying with backoff until etcd answers, so that New does not
// depend on etcd being up; every operation waits for the client under its
// own ctx, as it would wait for a connection. Without credentials (or with
// WithClient) the client exists from the start and get returns at once.
//
// The maker goroutine is owned by the Registry: stop ends it and waits.
type lazyClient struct {
	// settled is cancelled when the outcome is final: cli is set, or err
	// (etcd refused the credentials, clientv3 the configuration, or the
	// Registry was closed first).
	// Both are written once, before settled is cancelled.
	settled context.Context
	settle  context.CancelFunc
	cli     *clientv3.Client
	err     error

	cancel context.CancelFunc // ends the maker; nil without one
	done   chan struct{}      // closed when the maker has ended
	who    string             // user and endpoints, for errors

	mu       sync.Mutex
	lastErr  error // the maker's latest failed attempt
	attempts int
}

// readyClient wraps a client that already exists.
func readyClient(cli *clientv3.Client) *lazyClient {
	c := &lazyClient{cli: cli, done: make(chan struct{})}
	c.settled, c.settle = context.WithCancel(context.Background())
	c.settle()
	close(c.done)
	return c
}

// makeClient starts the goroutine that makes the client from cc, which
// authenticates (cc.Username is set). Failed attempts are retried with
// jittered backoff between lowest and highest, except a refusal of the
// credentials (or of the configuration), which is final.
func makeClient(cc clientv3.Config, lowest, highest time.Duration, logger log.Logger) *lazyClient {
	c := &lazyClient{done: make(chan struct{}), who: fmt.Sprintf("as %q at %v", cc.Username, cc.Endpoints)}
	c.settled, c.settle = context.WithCancel(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	// Also the context of the client made: cancelling it ends an attempt
	// waiting for etcd inside clientv3.New, so stop does not wait out the
	// dial timeout. Only Registry.Close cancels it, and then closes the
	// client anyway.
	cc.Context = ctx
	go c.run(ctx, cc, backoff.New(lowest, highest), logger)
	return c
}

func (c *lazyClient) run(ctx context.Context, cc clientv3.Config, bo *backoff.Backoff, logger log.Logger) {
	defer close(c.done)
	defer c.settle()
	start := time.Now()
	for {
		cli, err := clientv3.New(cc)
		if err == nil {
			c.cli = cli
			level.Info(logger).Log("msg", "etcd client authenticated", "user", cc.Username,
				"failed_attempts", c.failures(), "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if ctx.Err() != nil {
			c.err = ErrClosed
			return
		}
		if errors.Is(err, rpctypes.ErrAuthFailed) {
			c.err = fmt.Errorf("etcd: authenticate as %q: %w", cc.Username, err)
			level.Error(logger).Log("msg", "etcd refused the credentials", "user", cc.Username, "err", err)
			return
		}
		if refusedLocally(err) {
			c.err = fmt.Errorf("etcd: client: %w", err)
			level.Error(logger).Log("msg", "etcd client refused its configuration", "err", err)
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// etcd may well have answered, with a TLS error the client
			// does not pass on: look for it, else say nothing answered.
			if why := explainNoConnection(cc.Endpoints, cc.TLS, cc.DialTimeout); why != nil {
				err = fmt.Errorf("no connection to %v within the dial timeout %s: %w: %w", cc.Endpoints, cc.DialTimeout, why, err)
			} else {
				err = fmt.Errorf("no answer from %v within the dial timeout %s: %w", cc.Endpoints, cc.DialTimeout, err)
			}
		}
		wait := bo.Next()
		n := c.failed(fmt.Errorf("authenticate as %q: %w", cc.Username, err))
		level.Warn(logger).Log("msg", "etcd client not ready: authentication did not complete",
			"user", cc.Username, "failures", n, "retry_in", wait.Round(time.Millisecond), "err", err)
		if !backoff.Sleep(ctx, wait) {
			c.err = ErrClosed
			return
		}
	}
}

// refusedLocally reports whether clientv3.New failed before it sent
// anything (its configuration), so trying again cannot help: the error is
// neither etcd's answer, nor gRPC's, nor a timeout. Any answer of etcd but
// a refusal of the credentials (no leader, too many requests, not ready)
// and every connection failure may pass.
func refusedLocally(err error) bool {
	var etcdErr rpctypes.EtcdError
	if errors.As(err, &etcdErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	_, isStatus := status.FromError(err)
	return !isStatus
}

func (c *lazyClient) failed(err error) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
	c.attempts++
	return c.attempts
}

func (c *lazyClient) failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts
}

// get returns the client, waiting for it until ctx ends. It fails at once
// if the client will never exist (credentials refused, Registry closed).
// The error of a ctx that ended says why the client is not there yet.
func (c *lazyClient) get(ctx context.Context) (*clientv3.Client, error) {
	select {
	case <-c.settled.Done():
		return c.cli, c.err
	default:
	}
	select {
	case <-c.settled.Done():
		return c.cli, c.err
	case <-ctx.Done():
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		if last == nil {
			return nil, fmt.Errorf("etcd: not yet authenticated %s: %w", c.who, ctx.Err())
		}
		return nil, fmt.Errorf("etcd: not yet authenticated %s: %w (last attempt: %v)", c.who, ctx.Err(), last)
	}
}

// getWithin is get, waiting at most d.
func (c *lazyClient) getWithin(ctx context.Context, d time.Duration) (*clientv3.Client, error) {
	select {
	case <-c.settled.Done():
		return c.cli, c.err
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return c.get(ctx)
}

// failure returns the final error once the client will never exist, else
// nil.
func (c *lazyClient) failure() error {
	select {
	case <-c.settled.Done():
		return c.err
	default:
		return nil
	}
}

// stop ends the maker goroutine (an attempt in flight is cancelled) and
// waits for it. Afterwards cli is either the client made or nil for good.
// Idempotent.
func (c *lazyClient) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	<-c.done
}
