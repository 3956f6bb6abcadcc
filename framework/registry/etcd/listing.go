package etcd

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errNoHeader marks a stream whose last chunk carried no header (no
// revision to watch from): the listing is read again with Get.
var errNoHeader = errors.New("range stream ended without a header")

// lister reads every record under a prefix at one revision. A full
// listing of a large service is one etcd read and then a decode per
// record; read as one Get, the decode can only start once the whole
// response is in. Read as a stream (etcd 3.7's RangeStream: one
// linearizable read, chunks at one pinned revision), each chunk is
// decoded while the next is read, encoded and sent — the decode runs
// beside the read instead of after it.
//
// The stream is only a faster way to the same result: a server or client
// that does not offer it (etcd before 3.7, the namespace, ordering and
// leasing wrappers, a gRPC proxy of an older version) answers
// Unimplemented and the lister uses Get from then on; any other failure
// of a stream makes this one listing fall back to Get, which the client
// retries as it always did. Owned by one instancer's goroutine.
type lister struct {
	noStream bool // the server or client refused a stream: Get only

	// testHookChunk, when set, is called with each chunk's record count
	// (tests check that listings stream).
	testHookChunk func(n int)
}

// list calls each with the key-values under prefix, a chunk at a time,
// and returns the header of the read (its revision is the one the records
// are at). If a stream breaks after chunks were handed to each, reset is
// called before the records are handed again, from a Get.
func (l *lister) list(ctx context.Context, kv clientv3.KV, prefix string, reset func(), each func([]*mvccpb.KeyValue)) (*pb.ResponseHeader, error) {
	if !l.noStream {
		h, err := l.stream(ctx, kv, prefix, each)
		if err == nil {
			return h, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if status.Code(err) == codes.Unimplemented {
			l.noStream = true
		}
		reset()
	}
	resp, err := kv.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	each(resp.Kvs)
	return resp.Header, nil
}

// stream reads prefix as a RangeStream, calling each on every chunk as
// it arrives.
func (l *lister) stream(ctx context.Context, kv clientv3.KV, prefix string, each func([]*mvccpb.KeyValue)) (*pb.ResponseHeader, error) {
	sctx, cancel := context.WithCancel(ctx)
	ch, err := kv.GetStream(sctx, prefix, clientv3.WithPrefix())
	if err != nil {
		cancel()
		return nil, err
	}
	// The client's goroutine behind ch ends once the stream does; on an
	// early return, cancel ends the stream and the drain lets it finish
	// its last send.
	defer func() {
		cancel()
		for range ch {
		}
	}()
	var h *pb.ResponseHeader
	for chunk := range ch {
		if err := chunk.Err(); err != nil {
			return nil, err
		}
		if l.testHookChunk != nil {
			l.testHookChunk(len(chunk.Kvs))
		}
		each(chunk.Kvs)
		if chunk.Header != nil {
			h = chunk.Header
		}
	}
	if h == nil {
		return nil, errNoHeader
	}
	return h, nil
}
