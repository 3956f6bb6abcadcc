// Package etcdstore is an idempotency.Store in etcd, for a service whose
// instances already share an etcd cluster (the one their registry uses):
// every instance sees the same keys, so a keyed call retried or hedged onto
// another instance finds the first attempt's claim or result instead of
// being applied once per instance.
//
// Each key is one etcd key, <prefix><op>/<key>, whose value holds the
// claim's expiry and the attempt that holds it (its Store and its
// idempotency.Attempt), or once the call is done its result and when it
// is forgotten. Claim is one transaction in the common
// case: create the key if it does not exist (compare on its create
// revision), else read it; taking over an expired claim is a second one
// that compares on the revision read, so of several attempts that find it
// expired exactly one takes it.
//
// Complete and Release end only a claim the calling attempt holds (this
// Store's, made by the same execution of idempotency.Do: its Attempt): an
// attempt that was stopped (SIGSTOP, a hang) and resumed after another
// attempt — on another instance or this one — took its expired claim over
// neither overwrites the result that attempt saves nor frees the key under
// it.
//
// Results are kept for a retention (WithRetention, default
// DefaultRetention), as idempotency.MemoryStore keeps them; a retry later
// than that runs the call again. etcd deletes a key through its lease a
// little after (see buckets), so the store holds about one retention's
// keys — counted from etcd's last leader election, which renews every
// lease to its full time: after a restart or a leader change keys stay up
// to one retention longer (a result past its time is still not served). Expiry is judged by the reading instance's clock, as the claim's
// until comes from the claiming one's: instances' clocks must agree to
// well within idempotency.DefaultClaimTTL (NTP does).
package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// maxRounds bounds the compare-and-write rounds of one operation: a round
// is lost only to another attempt writing the same key meanwhile.
const maxRounds = 4

// errContended is returned when every round was lost.
var errContended = errors.New("the key kept changing")

// Store is an idempotency.Store in etcd. Its methods are safe for
// concurrent use.
type Store struct {
	kv     clientv3.KV
	cfg    config
	holder string // this Store's identity in its claims
	now    func() time.Time
	leases *buckets

	// beforeTakeover, when set, runs between reading an expired record and
	// taking it over (tests line concurrent attempts up there).
	beforeTakeover func()
}

// record is a key's value.
type record struct {
	Holder  string    `json:"holder,omitempty"`  // the claiming Store and attempt, while in progress
	Request string    `json:"request,omitempty"` // the claiming call's request digest (idempotency.Attempt)
	Until   time.Time `json:"until"`             // claim expiry; once done, when the result is forgotten
	Done    bool      `json:"done,omitempty"`
	Result  []byte    `json:"result,omitempty"`
}

var _ idempotency.Store = (*Store)(nil)

// New returns a Store over cli, which it does not close (the caller's, e.g.
// the one passed to its etcd registry with WithClient). It does not
// contact etcd.
func New(cli *clientv3.Client, opts ...Option) (*Store, error) {
	if cli == nil {
		return nil, errors.New("etcdstore: nil client")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Store{
		kv:     cli,
		cfg:    cfg,
		holder: idempotency.NewKey(),
		now:    time.Now,
		leases: &buckets{lease: cli, width: bucketWidth(cfg.retention), now: time.Now},
	}, nil
}

func (s *Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	// Fail fast on a member cut off from its leader instead of waiting.
	return context.WithTimeout(clientv3.WithRequireLeader(ctx), s.cfg.requestTimeout)
}

// Claim implements idempotency.Store.
func (s *Store) Claim(ctx context.Context, key string, until time.Time) ([]byte, idempotency.State, error) {
	ctx, cancel := s.request(ctx)
	defer cancel()
	res, st, err := s.claim(ctx, s.cfg.prefix+key, until)
	if err != nil {
		return nil, 0, fmt.Errorf("etcdstore: claim %q: %w", key, err)
	}
	return res, st, nil
}

func (s *Store) claim(ctx context.Context, k string, until time.Time) ([]byte, idempotency.State, error) {
	a, _ := idempotency.AttemptFrom(ctx)
	val, err := json.Marshal(record{Holder: s.holderOf(ctx), Request: a.Request, Until: until})
	if err != nil {
		return nil, 0, err
	}
	need := later(until, s.now().Add(s.cfg.retention))
	absent := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	resp, err := s.put(ctx, k, val, need, absent)
	for round := 1; ; round++ {
		if err != nil {
			return nil, 0, err
		}
		if resp.Succeeded {
			return nil, idempotency.Claimed, nil
		}
		if round == maxRounds {
			// Other attempts keep taking the key: one of them holds it.
			return nil, idempotency.Busy, nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 { // released or deleted since: create it
			resp, err = s.put(ctx, k, val, need, absent)
			continue
		}
		r, derr := decode(kvs[0].Value)
		if derr != nil {
			return nil, 0, derr
		}
		if r.Done && s.now().Before(r.Until) {
			return r.Result, idempotency.Done, nil
		}
		if !r.Done && r.Request != "" && a.Request != "" && r.Request != a.Request {
			// Live or expired, the claim was made for another request: a
			// takeover would answer that request's effect (EffectKey).
			return nil, idempotency.Reused, nil
		}
		if s.now().Before(r.Until) {
			return nil, idempotency.Busy, nil
		}
		// An expired claim (its attempt stopped mid-call) or a result past
		// its retention: take it over, unless another attempt wrote it
		// since it was read.
		if s.beforeTakeover != nil {
			s.beforeTakeover()
		}
		resp, err = s.put(ctx, k, val, need, clientv3.Compare(clientv3.ModRevision(k), "=", kvs[0].ModRevision))
	}
}

// Complete implements idempotency.Store. It saves result only while this
// Store holds the key's claim; when another instance's attempt took the
// expired claim over, that attempt saves the result (the same effect, by
// idempotency.EffectKey), and Complete returns nil without writing.
func (s *Store) Complete(ctx context.Context, key string, result []byte) error {
	ctx, cancel := s.request(ctx)
	defer cancel()
	k := s.cfg.prefix + key
	until := s.now().Add(s.cfg.retention)
	err := s.settle(ctx, k, func(mine clientv3.Cmp) (*clientv3.TxnResponse, error) {
		val, err := json.Marshal(record{Until: until, Done: true, Result: result})
		if err != nil {
			return nil, err
		}
		return s.put(ctx, k, val, until, mine)
	})
	if err != nil {
		return fmt.Errorf("etcdstore: complete %q: %w", key, err)
	}
	return nil
}

// Release implements idempotency.Store. It deletes the key only while this
// Store holds its claim: a result saved meanwhile, or another instance's
// claim, stays.
func (s *Store) Release(ctx context.Context, key string) error {
	ctx, cancel := s.request(ctx)
	defer cancel()
	k := s.cfg.prefix + key
	err := s.settle(ctx, k, func(mine clientv3.Cmp) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(mine).Then(clientv3.OpDelete(k)).Else(clientv3.OpGet(k)).Commit()
	})
	if err != nil {
		return fmt.Errorf("etcdstore: release %q: %w", key, err)
	}
	return nil
}

// settle runs write, with a compare that the key is unchanged since read,
// while the key is a claim of this Store; write's Else reads the key again.
func (s *Store) settle(ctx context.Context, k string, write func(mine clientv3.Cmp) (*clientv3.TxnResponse, error)) error {
	get, err := s.kv.Get(ctx, k)
	if err != nil {
		return err
	}
	kvs := get.Kvs
	holder := s.holderOf(ctx)
	for range maxRounds {
		if len(kvs) == 0 {
			return nil // released or forgotten: no claim to end
		}
		r, err := decode(kvs[0].Value)
		if err != nil {
			return err
		}
		if r.Done || r.Holder != holder {
			return nil // saved already, or another attempt's claim now
		}
		resp, err := write(clientv3.Compare(clientv3.ModRevision(k), "=", kvs[0].ModRevision))
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		kvs = resp.Responses[0].GetResponseRange().Kvs
	}
	return errContended
}

// holderOf names the claims of the attempt calling (idempotency.Attempt):
// two executions of one key in this process are two holders, so one that
// outlived its claim does not end the claim of the one that took it over.
func (s *Store) holderOf(ctx context.Context) string {
	if a, ok := idempotency.AttemptFrom(ctx); ok && a.ID != "" {
		return s.holder + "/" + a.ID
	}
	return s.holder
}

// put commits: if cmp, put val at k under a lease lasting at least until
// need; else get k.
func (s *Store) put(ctx context.Context, k string, val []byte, need time.Time, cmp clientv3.Cmp) (*clientv3.TxnResponse, error) {
	for attempt := 0; ; attempt++ {
		id, err := s.leases.lasting(ctx, need)
		if err != nil {
			return nil, err
		}
		resp, err := s.kv.Txn(ctx).If(cmp).Then(clientv3.OpPut(k, string(val), clientv3.WithLease(id))).Else(clientv3.OpGet(k)).Commit()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && attempt == 0 {
			s.leases.drop(id) // gone from etcd: grant another once
			continue
		}
		return resp, err
	}
}

func decode(b []byte) (record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode the stored record: %w", err)
	}
	return r, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
