package etcdstore

import (
	"fmt"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// Defaults.
const (
	// DefaultPrefix is the key prefix of every key the Store writes.
	DefaultPrefix = "/warren/idempotency/"
	// DefaultRetention is how long a result is kept: the demo's
	// MemoryStore's, far longer than a Warren client retries a call.
	DefaultRetention = 10 * time.Minute
	// DefaultRequestTimeout bounds each call to etcd. Do settles a claim
	// with a context that is never cancelled, so without it a Complete
	// would wait for an unreachable etcd forever.
	DefaultRequestTimeout = 5 * time.Second
)

// Option configures a Store.
type Option func(*config)

type config struct {
	prefix         string
	retention      time.Duration
	requestTimeout time.Duration
}

func defaultConfig() config {
	return config{prefix: DefaultPrefix, retention: DefaultRetention, requestTimeout: DefaultRequestTimeout}
}

// WithPrefix puts every key under prefix (default DefaultPrefix). Give
// each set of services that must not see each other's keys its own.
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithRetention keeps each result for keep after its call completed
// (default DefaultRetention); a retry later than that runs the call again.
// It must be at least idempotency.DefaultClaimTTL.
func WithRetention(keep time.Duration) Option { return func(c *config) { c.retention = keep } }

// WithRequestTimeout bounds each call to etcd (default
// DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

func (c *config) validate() error {
	switch {
	case c.prefix == "":
		return fmt.Errorf("etcdstore: empty key prefix")
	case c.retention < idempotency.DefaultClaimTTL:
		return fmt.Errorf("etcdstore: retention %s: must be at least the claim TTL (%s)", c.retention, idempotency.DefaultClaimTTL)
	case c.requestTimeout <= 0:
		return fmt.Errorf("etcdstore: request timeout %s: must be positive", c.requestTimeout)
	}
	return nil
}
