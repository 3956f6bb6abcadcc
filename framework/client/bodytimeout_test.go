package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// charger is a Warren HTTP instance of a payment service: POST /charge
// behind httptransport.Handler and a go-kit server with Warren's JSON
// decoder, as svcgen writes them; ran counts the method's runs.
type charger struct {
	id   string
	url  string // the server's own address
	ran  atomic.Int64
	inst registry.Instance
}

func startCharger(t *testing.T, id string, opts ...httptransport.HandlerOption) *charger {
	t.Helper()
	c := &charger{id: id}
	charge := func(_ context.Context, req any) (any, error) {
		c.ran.Add(1)
		return echoResp{N: req.(echoReq).N, From: id}, nil
	}
	rt := httptransport.NewRouter()
	rt.Handle("POST /charge", httptransport.NewServer(charge, httptransport.DecodeJSON[echoReq](), httptransport.EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(httptransport.Handler(rt, log.NewNopLogger(), 0, opts...))
	t.Cleanup(srv.Close)
	c.url = srv.Listener.Addr().String()
	c.inst = instanceAt(id, c.url)
	return c
}

func instanceAt(id, hostport string) registry.Instance {
	host, port, _ := net.SplitHostPort(hostport)
	p, _ := net.LookupPort("tcp", port)
	return registry.Instance{ID: id, Name: "payment", Endpoints: []string{registry.EndpointURL("http", host, p)}}
}

// stalledPath is a TCP relay in front of an instance whose path loses
// request bodies: it passes each request's headers on at once and never
// the bytes after them (a link that stalls mid-request), and passes the
// answers back whole. The caller wrote its whole request; the instance
// waits for the body until its body timeout.
type stalledPath struct {
	ln      net.Listener
	to      string
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
	closed  bool
	answers atomic.Int64 // 408 body_timeout answers passed back
	other   atomic.Int64 // any other answer
}

func startStalledPath(t *testing.T, to string) *stalledPath {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stalledPath{ln: ln, to: to}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.relay(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// track records c so Cleanup closes it; false (c closed) when Cleanup
// has run.
func (p *stalledPath) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *stalledPath) relay(c net.Conn) {
	defer c.Close()
	if !p.track(c) {
		return
	}
	s, err := net.DialTimeout("tcp", p.to, 5*time.Second)
	if err != nil || !p.track(s) {
		return
	}
	defer s.Close()
	p.wg.Go(func() {
		// The caller's bytes: the header block goes on, the rest is lost.
		defer s.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			if _, err := s.Write(line); err != nil {
				return
			}
			if len(bytes.TrimSpace(line)) == 0 {
				break
			}
		}
		_, _ = io.Copy(io.Discard, br)
	})
	// The instance's answers, whole; the first bytes say which answer.
	var head bytes.Buffer
	_, _ = io.Copy(io.MultiWriter(c, &capped{&head, 1024}), s)
	if bytes.HasPrefix(head.Bytes(), []byte("HTTP/1.1 408 ")) && bytes.Contains(head.Bytes(), []byte(`"code":"body_timeout"`)) {
		p.answers.Add(1)
	} else if head.Len() > 0 {
		p.other.Add(1)
	}
}

// capped keeps the first n bytes written to it.
type capped struct {
	b *bytes.Buffer
	n int
}

func (w *capped) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// A Warren instance that answers 408 body_timeout never ran the method:
// its handler decodes the whole body first, and the body did not reach
// it in time. The call — a plain POST, neither idempotent nor keyed — goes
// to another instance and succeeds, every time, and the method runs once
// (before, the 408 ended the call: KindForStatus(408) was Internal, and an
// answer's class was fatal; report h5). The instance is not held guilty:
// its path, or the caller, was slow, not its handler.
func TestCall_BodyTimeoutAnswerIsRetriedElsewhereForAPost(t *testing.T) {
	// A tiny wait between body reads on a-late, whose path loses bodies;
	// b-ok is reached directly, with the default limits.
	late := startCharger(t, "a-late", httptransport.WithBodyTimeouts(2*time.Second, 50*time.Millisecond))
	path := startStalledPath(t, late.url)
	ok := startCharger(t, "b-ok")
	lateInst := instanceAt("a-late", path.ln.Addr().String())
	c := must(NewFromInstancer(sd.FixedInstancer{lateInst.String(), ok.inst.String()}, "payment",
		WithBalancer(&byID{}), // a-late first, every call
		WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond), retry.WithoutHedging())))
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const calls = 5
	for i := range calls {
		got, err := Call[echoReq, echoResp](ctx, c, http.MethodPost, "/charge", echoReq{N: i})
		if err != nil || got.From != "b-ok" || got.N != i {
			t.Fatalf("POST /charge #%d = %+v, %v; want b-ok's answer after a-late's 408 body_timeout", i, got, err)
		}
	}
	// The relay counts an answer once the instance closed that
	// connection, which may come a moment after the client read it.
	for deadline := time.Now().Add(10 * time.Second); path.answers.Load()+path.other.Load() < calls && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n, o := path.answers.Load(), path.other.Load(); n != calls || o != 0 {
		t.Fatalf("a-late answered %d 408 body_timeout and %d other answers; want %d and 0 (each call tried it first)", n, o, calls)
	}
	if a, b := late.ran.Load(), ok.ran.Load(); a != 0 || b != calls {
		t.Fatalf("the method ran %d times on a-late and %d on b-ok; want 0 and %d (once per call)", a, b, calls)
	}
	if st := c.State(); st.Ejected != 0 {
		t.Fatalf("state %+v: want a-late never ejected", st)
	}
}

// A 408 that is not a Warren server's body_timeout says nothing of what
// ran — a proxy's (nginx's client_body_timeout page), or a handler's own
// error with status 408 (code "unavailable", the kind a 408 reads as) —
// and a POST is not sent again.
func TestCall_Other408IsNotRetriedForAPost(t *testing.T) {
	var hits408 atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits408.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusRequestTimeout)
		_, _ = io.WriteString(w, "<html><body><h1>408 Request Time-out</h1></body></html>")
	}))
	t.Cleanup(proxy.Close)
	handler408 := httptest.NewServer(httptransport.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits408.Add(1)
		httptransport.WriteError(w, statusErr(http.StatusRequestTimeout))
	}), log.NewNopLogger(), 0))
	t.Cleanup(handler408.Close)
	ok := startCharger(t, "b-ok")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct{ name, addr, code string }{
		{"a proxy's 408", proxy.Listener.Addr().String(), ""},
		{"a handler's 408", handler408.Listener.Addr().String(), "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := must(NewFromInstancer(sd.FixedInstancer{instanceAt("a-408", tc.addr).String(), ok.inst.String()}, "payment",
				WithBalancer(&byID{}), WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond), retry.WithoutHedging())))
			defer c.Close()
			hits, ran := hits408.Load(), ok.ran.Load()
			_, err := Call[echoReq, echoResp](ctx, c, http.MethodPost, "/charge", echoReq{N: 1})
			var ce *Error
			if !errors.As(err, &ce) || ce.Status != http.StatusRequestTimeout || ce.Code != tc.code {
				t.Fatalf("POST /charge: err = %v; want a-408's 408 (code %q)", err, tc.code)
			}
			if h, r := hits408.Load()-hits, ok.ran.Load()-ran; h != 1 || r != 0 {
				t.Fatalf("a-408 got %d requests and b-ok ran the method %d times; want 1 and 0 (no retry)", h, r)
			}
		})
	}
}

// statusErr is an error with an HTTP status of its own (go-kit's
// StatusCoder), as a handler may return.
type statusErr int

func (e statusErr) Error() string   { return http.StatusText(int(e)) }
func (e statusErr) StatusCode() int { return int(e) }

// Which 408s say the method did not run.
func TestError_BodyTimeoutClass(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want retry.Class
	}{
		{&Error{Status: 408, Code: httptransport.CodeBodyTimeout}, retry.Unprocessed},
		{&Error{Status: 408}, retry.Fatal},
		{&Error{Status: 408, Code: "internal"}, retry.Fatal},
		{&Error{Status: 408, Code: httptransport.CodeBodyTimeout, PassedOn: true}, retry.Fatal},
		{&Error{Status: 400, Code: httptransport.CodeBodyTimeout}, retry.Fatal},
	} {
		if got := tc.err.RetryClass(); got != tc.want || instanceFailure(tc.err) || tc.err.RetryFree() {
			t.Errorf("%+v: RetryClass %s, instanceFailure %v, RetryFree %v; want %s, false, false",
				tc.err, got, instanceFailure(tc.err), tc.err.RetryFree(), tc.want)
		}
	}
}
