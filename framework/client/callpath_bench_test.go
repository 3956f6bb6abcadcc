package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// The call path's cost, as bench/client.go's request-path suite sees it
// (a 256 B JSON POST to loopback instances) but one call at a time, so
// allocs/op and B/op are the client's own and deterministic. Compare
// BenchmarkCallPath/warren* with BenchmarkCallPath/raw, net/http doing
// the same POST by hand.

type callPathReq struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

type callPathResp struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

func callPathEcho(w http.ResponseWriter, r *http.Request) {
	var in callPathReq
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(callPathResp(in))
}

// callPathServers starts n echo servers on 127.0.0.1 and returns their
// instance records, as registry.Instance strings.
func callPathServers(b *testing.B, n int) []string {
	b.Helper()
	var insts []string
	for range n {
		srv := httptest.NewServer(http.HandlerFunc(callPathEcho))
		b.Cleanup(srv.Close)
		port := srv.Listener.Addr().(*net.TCPAddr).Port
		insts = append(insts, registry.Instance{
			ID: registry.DefaultID("bench", "127.0.0.1", port), Name: "bench",
			Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)},
		}.String())
	}
	return insts
}

func BenchmarkCallPath(b *testing.B) {
	for _, n := range []int{1, 3} {
		insts := callPathServers(b, n)
		callPathContenders(b, fmt.Sprintf("/instances=%d", n), insts, runCallPath,
			func() (*rawCallPath, func()) { r := newRawCallPath(insts); return r, r.tr.CloseIdleConnections })
	}
}

// callPathContenders runs the four ways a call is measured, each as a
// sub-benchmark named with suffix, through run: Warren's client the way a
// generated client calls it (its method's endpoint), Warren with
// bench/client.go's fixed per-attempt timeout of a second (through
// client.Call), raw net/http, and raw net/http under a deadline of its
// own per call, as a careful client sets one (what the attempt timeout
// compares with). opts are added to both Warren clients; raw makes the
// raw client and the func that releases it.
func callPathContenders(b *testing.B, suffix string, insts []string, run func(*testing.B, func(int) (int, error)),
	raw func() (*rawCallPath, func()), opts ...Option) {
	ctx := context.Background()
	text := strings.Repeat("x", 256)
	b.Run("warren"+suffix, func(b *testing.B) {
		c, err := NewFromInstancer(sd.FixedInstancer(insts), "bench", opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ep := NewEndpoint[callPathReq, callPathResp](c, "POST", func(callPathReq) string { return "/echo" })
		run(b, func(i int) (int, error) {
			resp, err := ep(ctx, callPathReq{ID: i, Text: text})
			if err != nil {
				return 0, err
			}
			return resp.(callPathResp).ID, nil
		})
	})
	b.Run("warren+attempt-timeout"+suffix, func(b *testing.B) {
		c, err := NewFromInstancer(sd.FixedInstancer(insts), "bench", append(slices.Clone(opts), WithRetry(retry.WithPerAttemptTimeout(time.Second)))...)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, func(i int) (int, error) {
			resp, err := Call[callPathReq, callPathResp](ctx, c, "POST", "/echo", callPathReq{ID: i, Text: text})
			return resp.ID, err
		})
	})
	b.Run("raw"+suffix, func(b *testing.B) {
		r, done := raw()
		defer done()
		run(b, func(i int) (int, error) {
			resp, err := r.call(ctx, callPathReq{ID: i, Text: text})
			return resp.ID, err
		})
	})
	b.Run("raw+deadline"+suffix, func(b *testing.B) {
		r, done := raw()
		defer done()
		run(b, func(i int) (int, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			resp, err := r.call(ctx, callPathReq{ID: i, Text: text})
			return resp.ID, err
		})
	})
}

func runCallPath(b *testing.B, call func(i int) (int, error)) {
	b.Helper()
	for i := range 10 { // connections up, policies warm
		if _, err := call(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		id, err := call(i)
		if err != nil {
			b.Fatal(err)
		}
		if id != i {
			b.Fatalf("answer for %d says %d", i, id)
		}
	}
}

// rawCallPath is bench/client.go's raw contender: one transport, an
// atomic round robin over the base URLs, JSON in and out.
type rawCallPath struct {
	tr    *http.Transport
	hc    *http.Client
	bases []string
	next  atomic.Uint64
}

func newRawCallPath(insts []string) *rawCallPath {
	r := &rawCallPath{tr: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}}
	r.hc = &http.Client{Transport: r.tr}
	for _, s := range insts {
		inst, err := registry.ParseInstance(s)
		if err != nil {
			panic(err)
		}
		base, _ := inst.Endpoint("http")
		u, _ := url.Parse(base)
		r.bases = append(r.bases, "http://"+u.Host)
	}
	return r
}

func (r *rawCallPath) call(ctx context.Context, in callPathReq) (callPathResp, error) {
	var out callPathResp
	body, err := json.Marshal(in)
	if err != nil {
		return out, err
	}
	base := r.bases[(r.next.Add(1)-1)%uint64(len(r.bases))]
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/echo", bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("status %d", resp.StatusCode)
	}
	return out, json.Unmarshal(b, &out)
}

// BenchmarkCallPathParallel is BenchmarkCallPath's calls from 16
// goroutines per GOMAXPROCS (32 on 2 cores, bench/client.go's
// concurrency) to 3 instances: what is shared between calls (counters,
// pools, the balancer) is contended as under load.
func BenchmarkCallPathParallel(b *testing.B) {
	insts := callPathServers(b, 3)
	run := func(b *testing.B, call func(i int) (int, error)) {
		for i := range 10 {
			if _, err := call(i); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				id, err := call(i)
				if err != nil {
					b.Error(err)
					return
				}
				if id != i {
					b.Errorf("answer for %d says %d", i, id)
					return
				}
			}
		})
	}
	callPathContenders(b, "", insts, run,
		func() (*rawCallPath, func()) { r := newRawCallPath(insts); return r, r.tr.CloseIdleConnections })
}

// echoRoundTripper answers every request in memory with its own body, so
// BenchmarkCallPathInMemory measures the clients' own work: no sockets,
// no server, no scheduler.
type echoRoundTripper struct{}

func (echoRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	_ = r.Body.Close()
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)),
		Request:       r,
	}, nil
}

// BenchmarkCallPathInMemory is BenchmarkCallPath over echoRoundTripper:
// its ns/op and allocs/op are the client's alone (Warren's beside raw
// net/http's http.Client over the same round tripper), steady even on a
// loaded machine.
func BenchmarkCallPathInMemory(b *testing.B) {
	insts := []string{
		registry.Instance{ID: "bench-1", Name: "bench", Endpoints: []string{"http://127.0.0.1:1"}}.String(),
		registry.Instance{ID: "bench-2", Name: "bench", Endpoints: []string{"http://127.0.0.1:2"}}.String(),
		registry.Instance{ID: "bench-3", Name: "bench", Endpoints: []string{"http://127.0.0.1:3"}}.String(),
	}
	inMemory := WithRoundTripper(func(http.RoundTripper) http.RoundTripper { return echoRoundTripper{} })
	raw := &rawCallPath{hc: &http.Client{Transport: echoRoundTripper{}}, bases: []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}}
	callPathContenders(b, "", insts, runCallPath, func() (*rawCallPath, func()) { return raw, func() {} }, inMemory)
}
