package etcd

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// listingFixture writes good records (under one lease, as registrars
// do) interleaved with junk under service "user" of prefix, and returns
// the instance strings a listing must serve and the junk count it must
// skip.
func listingFixture(t *testing.T, prefix string, good, junk int) (want []string, skipped int) {
	t.Helper()
	raw := rawClient(t, shared)
	ctx := testCtx(t)
	lease, err := raw.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	svc := "/" + prefix + "/services/user/"
	var ops []clientv3.Op
	flush := func() {
		if _, err := raw.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range good {
		inst := testInstance(10000 + i)
		inst.Metadata = map[string]string{"n": fmt.Sprint(i)}
		want = append(want, inst.String())
		ops = append(ops, clientv3.OpPut(svc+inst.ID, mustRecord(t, inst), clientv3.WithLease(lease.ID)))
		if i%(good/junk) == 0 && skipped < junk {
			// Junk of every kind the instancer refuses, spread over the
			// chunks of a streamed listing.
			bad := []string{"\x00not json", `{"v":99,"instance":{}}`, mustRecord(t, testInstance(9999)), "{"}[skipped%4]
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sjunk-%04d", svc, i), bad, clientv3.WithLease(lease.ID)))
			skipped++
		}
		if len(ops) >= 100 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
	slices.Sort(want)
	return want, skipped
}

// listed opens an instancer of "user" on a Registry with opts and
// returns what its first listing served, skipped and how many streamed
// chunks it read.
func listed(t *testing.T, prefix string, opts ...Option) (got []string, skipped, chunks int) {
	t.Helper()
	obs := &skipObserver{}
	var mu sync.Mutex
	hook := func(c *config) {
		c.testHookListChunk = func(int) { mu.Lock(); chunks++; mu.Unlock() }
	}
	r, _ := newTestRegistry(t, shared, prefix, append([]Option{WithObserver(obs), hook}, opts...)...)
	in, err := r.NewInstancer(testCtx(t), "user")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	ev := in.State()
	if ev.Err != nil {
		t.Fatalf("listing failed: %v", ev.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	return ev.Instances, obs.get(), chunks
}

// A full listing streams (each chunk decoded while the next is read) and
// serves exactly what the one-Get listing serves, junk skipped and
// counted alike; a client or server without the stream gets the Get.
func TestInstancer_ListingStreamsAndServesWhatGetServes(t *testing.T) {
	prefix := testPrefix(t)
	want, junk := listingFixture(t, prefix, 400, 20)

	got, skipped, chunks := listed(t, prefix)
	if !slices.Equal(got, want) || skipped != junk {
		t.Fatalf("streamed listing: %d instances, %d skipped; want %d, %d", len(got), skipped, len(want), junk)
	}
	if chunks < 2 {
		t.Fatalf("listing of %d records read %d streamed chunks; want it streamed", len(want)+junk, chunks)
	}

	// A KV without the stream (as etcd before 3.7, or the namespace
	// wrapper) answers Unimplemented: the listing is the Get.
	got, skipped, chunks = listed(t, prefix, withKV(t, func(kv clientv3.KV) clientv3.KV { return noStreamKV{kv} }))
	if !slices.Equal(got, want) || skipped != junk || chunks != 0 {
		t.Fatalf("listing without stream: %d instances, %d skipped, %d chunks; want %d, %d, 0", len(got), skipped, chunks, len(want), junk)
	}
}

// A stream that breaks after handing over records (here: a phantom good
// record and a phantom junk key, then no header) is read again with Get,
// and nothing of the broken stream stays: not the phantom instance, not
// the phantom's skip.
func TestInstancer_BrokenListingStreamFallsBackToGetKeepingNothingOfIt(t *testing.T) {
	prefix := testPrefix(t)
	want, junk := listingFixture(t, prefix, 40, 4)
	phantom := testInstance(9000)
	svc := "/" + prefix + "/services/user/"
	kvs := []*mvccpb.KeyValue{
		{Key: []byte(svc + phantom.ID), Value: []byte(mustRecord(t, phantom)), Lease: 1},
		{Key: []byte(svc + "phantom-junk"), Value: []byte("{")},
	}
	got, skipped, chunks := listed(t, prefix, withKV(t, func(kv clientv3.KV) clientv3.KV { return brokenStreamKV{kv, kvs} }))
	if !slices.Equal(got, want) || skipped != junk {
		t.Fatalf("after a broken stream: %d instances, %d skipped; want %d, %d\n%v", len(got), skipped, len(want), junk, got)
	}
	if chunks != 1 {
		t.Fatalf("%d chunks read; want the broken stream's one", chunks)
	}
}

// withKV gives the Registry its own client whose KV is wrap(KV).
func withKV(t *testing.T, wrap func(clientv3.KV) clientv3.KV) Option {
	cli := rawClient(t, shared)
	cli.KV = wrap(cli.KV)
	return WithClient(cli)
}

type noStreamKV struct{ clientv3.KV }

func (noStreamKV) GetStream(context.Context, string, ...clientv3.OpOption) (clientv3.GetStreamChan, error) {
	return nil, status.Error(codes.Unimplemented, "no stream here")
}

// brokenStreamKV's stream hands over kvs and ends without a header.
type brokenStreamKV struct {
	clientv3.KV
	kvs []*mvccpb.KeyValue
}

func (b brokenStreamKV) GetStream(context.Context, string, ...clientv3.OpOption) (clientv3.GetStreamChan, error) {
	ch := make(chan clientv3.RangeStreamResponse, 1)
	ch <- clientv3.RangeStreamResponse{RangeResponse: &pb.RangeResponse{Kvs: b.kvs}}
	close(ch)
	return ch, nil
}
