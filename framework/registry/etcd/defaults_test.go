package etcd

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/registry"
)

// The defaults the docs state (docs/registry-etcd.md, Options), as the
// config a Registry without options uses.
func TestDefaults_AreTheDocumentedOnes(t *testing.T) {
	c := defaultConfig()
	for _, d := range []struct {
		name      string
		got, want time.Duration
	}{
		{"TTL", c.ttl, 10 * time.Second},
		{"dial timeout", c.dialTimeout, 5 * time.Second},
		{"request timeout", c.requestTimeout, 5 * time.Second},
		{"keepalive time", c.keepAliveTime, 10 * time.Second},
		{"keepalive timeout", c.keepAliveTimeout, 3 * time.Second},
		{"backoff min", c.backoffMin, 200 * time.Millisecond},
		{"backoff max", c.backoffMax, 5 * time.Second},
		{"initial wait", c.initialWait, 3 * time.Second},
		{"progress interval", c.progressInterval, time.Minute},
		{"close timeout", c.closeTimeout, 3 * time.Second},
		// TTL + 2 × backoff max + 1 s: "21 s" in the docs.
		{"reconnect hold", c.holdAfterReconnect(), 21 * time.Second},
	} {
		if d.got != d.want {
			t.Errorf("default %s = %s, docs say %s", d.name, d.got, d.want)
		}
	}
	if c.prefix != "warren" {
		t.Errorf("default prefix = %q, docs say warren", c.prefix)
	}
}

// The lease a registration is granted: 10 s without WithTTL, and a TTL
// with a fraction of a second rounded up to whole seconds, as etcd counts
// them (a 4.2 s TTL granted as 4 s would expire before the process
// expects).
func TestRegistrar_GrantsTheDefaultTTLAndRoundsUp(t *testing.T) {
	raw := rawClient(t, shared)
	for _, tc := range []struct {
		name string
		opts []Option
		want int64
	}{
		{"default", nil, 10},
		{"4.2 s", []Option{WithTTL(4200 * time.Millisecond)}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			opts := append([]Option{WithEndpoints(shared.Endpoints()...), WithPrefix(testPrefix(t))}, tc.opts...)
			reg, err := New(ctx, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { reg.Close() })
			inst := testInstance(8080)
			if err := reg.Register(ctx, inst); err != nil {
				t.Fatal(err)
			}
			lease := leaseOf(t, raw, reg.key(inst))
			if lease <= 0 {
				t.Fatalf("key %s has lease %d", reg.key(inst), lease)
			}
			ttl, err := raw.TimeToLive(ctx, clientv3.LeaseID(lease))
			if err != nil {
				t.Fatal(err)
			}
			if ttl.GrantedTTL != tc.want {
				t.Fatalf("granted TTL %d s, want %d s", ttl.GrantedTTL, tc.want)
			}
		})
	}
}

// A registrar whose key another process claimed at another address (under
// a lease of its own: our lease had lapsed) keeps retrying, refused; its
// Deregister then must not delete that record. The delete is guarded by
// our lease, and here the registration is still known to the Registry,
// so only that guard protects the other record.
func TestRegistrar_DeregisterNeverDeletesARecordUnderAnotherLease(t *testing.T) {
	reg, _ := newTestRegistry(t, shared, testPrefix(t))
	ctx := testCtx(t)
	inst, raw, key := registerOnShared(t, ctx, reg)
	foreign := takeOver(t, raw, key, inst)
	waitFor(t, 10*time.Second, "the registrar refused and retrying", func() bool {
		return reg.Status().State == registry.StateRetrying
	})
	if err := reg.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if l := leaseOf(t, raw, key); l != int64(foreign) {
		t.Fatalf("after our Deregister the key has lease %x, want the other process's %x", l, int64(foreign))
	}
}
