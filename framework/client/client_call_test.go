package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

func TestCall_DecodesResponseAndPropagatesRequestID(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	ctx := requestid.NewContext(context.Background(), "req-42")
	got, err := Call[echoReq, echoResp](ctx, c, "POST", "/echo", echoReq{N: 7})
	if err != nil {
		t.Fatal(err)
	}
	if got.N != 7 || got.From != b.inst.ID || got.RequestID != "req-42" {
		t.Fatalf("got %+v", got)
	}
}

func TestCall_ServerErrorComesBackAsTypedErrorWithoutRetry(t *testing.T) {
	b := startBackend(t, "", nil)
	b.mode.Store(mode404)
	c := newClient(t, newRegistry(t, b.inst))
	_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/users/7", echoReq{})
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if ce.Status != 404 || ce.Code != "user_not_found" || ce.Message != "user 7 not found" || ce.Instance != b.inst.HostPort() {
		t.Fatalf("error = %+v", ce)
	}
	if h := b.hits.Load(); h != 1 {
		t.Fatalf("404 was sent %d times, want once", h)
	}
}

// A service that passes a peer's error on, as it came or wrapped with
// svcerr.Wrap, sends its own caller the peer's message and its own, never
// the peer instance's address that the client's error names in the logs.
func TestCall_PeerErrorPassedOnDoesNotSendThePeersAddress(t *testing.T) {
	b := startBackend(t, "", nil)
	b.mode.Store(mode404)
	c := newClient(t, newRegistry(t, b.inst))
	_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/users/7", echoReq{})
	if err == nil || !strings.Contains(err.Error(), b.inst.HostPort()) {
		t.Fatalf("err = %v; want the instance named for the logs", err)
	}
	for _, tc := range []struct {
		err        error
		status     int
		want, code string
	}{
		{fmt.Errorf("lookup: %w", err), 404, "lookup: user 7 not found", "user_not_found"},
		{svcerr.Wrap(svcerr.Unavailable, "users_down", "user service unavailable", err), 503, "user service unavailable", "users_down"},
	} {
		st, body := httptransport.Classify(tc.err)
		if st != tc.status || body.Error != tc.want || body.Code != tc.code {
			t.Errorf("Classify(%v) = %d %+v; want %d %q %q", tc.err, st, body, tc.status, tc.want, tc.code)
		}
	}
}

// A method the instance has not written (501, svcerr.Unimplemented) is
// an answer: not retried, and not held against the instance, whose other
// methods work — with ejection after 2 failures, 10 such answers leave it in.
func TestCall_UnimplementedIsNotRetriedNorHeldAgainstTheInstance(t *testing.T) {
	stub, a, b := startBackend(t, "", nil), startBackend(t, "", nil), startBackend(t, "", nil)
	stub.mode.Store(mode501)
	c := newClient(t, newRegistry(t, stub.inst, a.inst, b.inst), WithBalancer(balancer.NewRoundRobin()),
		WithOutlier(outlier.WithConsecutiveFailures(2)))
	unimplemented := 0
	for i := range 30 {
		_, err := Call[echoReq, echoResp](context.Background(), c, "POST", "/refund", echoReq{N: i})
		switch {
		case err == nil:
		case svcerr.KindOf(err) == svcerr.Unimplemented && strings.Contains(err.Error(), "Refund is not implemented yet"):
			unimplemented++
		default:
			t.Fatalf("call %d: err = %v (kind %s), want the 501 as svcerr.Unimplemented", i, err, svcerr.KindOf(err))
		}
	}
	if h := stub.hits.Load() + a.hits.Load() + b.hits.Load(); h != 30 {
		t.Fatalf("the instances got %d requests for 30 calls: a 501 was retried", h)
	}
	if int64(unimplemented) != stub.hits.Load() || unimplemented < 5 {
		t.Fatalf("%d calls answered 501, the stub instance got %d of 30 (round robin over 3)", unimplemented, stub.hits.Load())
	}
	if e := c.State().Ejected; e != 0 {
		t.Fatalf("%d instances ejected for answering 501", e)
	}
}

func TestCall_NonJSONErrorBodyKeepsStatus(t *testing.T) {
	b := startBackend(t, "", nil)
	b.mode.Store(mode502)
	c := newClient(t, newRegistry(t, b.inst), WithRetry(retry.WithMaxAttempts(1)))
	_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{})
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != 502 || ce.Code != "" || ce.Message != "Bad Gateway" {
		t.Fatalf("err = %#v", err)
	}
}

func TestCall_NonIdempotentPostIsRetriedOnlyWhenSurelyUnprocessed(t *testing.T) {
	cases := []struct {
		name string
		mode int32
		opts []CallOption
		hits int64
	}{
		{"502 may have been processed", mode502, nil, 1},
		{"502 declared idempotent", mode502, []CallOption{Idempotent()}, 3},
		{"503 from a proxy that had nowhere to send it", modeProxy503, nil, 3},
		{"503 overloaded: the shedder refused it", modeOverloaded, nil, 3},
		// A handler's svcerr.Unavailable may follow its effects.
		{"503 a handler answered", mode503, nil, 1},
		{"503 a handler answered, idempotent", mode503, []CallOption{Idempotent()}, 3},
		// Another service's overload, passed on: this instance acted.
		{"503 overloaded passed on", modePassedOn, nil, 1},
		{"500 is the answer", mode500, []CallOption{Idempotent()}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bs []*backend
			var insts []registry.Instance
			for range 3 {
				b := startBackend(t, "", nil)
				b.mode.Store(tc.mode)
				bs = append(bs, b)
				insts = append(insts, b.inst)
			}
			c := newClient(t, newRegistry(t, insts...), WithoutOutlier(), WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond)))
			_, err := Call[echoReq, echoResp](context.Background(), c, "POST", "/echo", echoReq{N: 1}, tc.opts...)
			if err == nil {
				t.Fatal("want an error")
			}
			var total int64
			for _, b := range bs {
				total += b.hits.Load()
			}
			if total != tc.hits {
				t.Fatalf("%d attempts, want %d (err %v)", total, tc.hits, err)
			}
		})
	}
}

func TestCall_RetryNeverHitsTheSameInstanceTwiceInARow(t *testing.T) {
	log := &hitLog{}
	var insts []registry.Instance
	for range 3 {
		b := startBackend(t, "", log)
		b.mode.Store(mode503)
		insts = append(insts, b.inst)
	}
	for name, bal := range map[string]balancer.Balancer{
		"p2c": balancer.NewP2C(), "random": balancer.NewRandom(), "hash": must(balancer.NewConsistentHash()),
	} {
		log.mu.Lock()
		log.hits = nil
		log.mu.Unlock()
		c := newClient(t, newRegistry(t, insts...), WithBalancer(bal), WithoutOutlier(),
			WithRetry(retry.WithMaxAttempts(3), retry.WithBackoff(time.Microsecond, time.Microsecond), retry.WithBudget(nil)))
		for i := range 20 {
			_, _ = Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{}, HashKey(fmt.Sprint(i)))
		}
		log.mu.Lock()
		hits := slices.Clone(log.hits)
		log.mu.Unlock()
		if len(hits) != 60 {
			t.Fatalf("%s: %d attempts, want 60", name, len(hits))
		}
		for i := 0; i < len(hits); i += 3 {
			if hits[i] == hits[i+1] || hits[i+1] == hits[i+2] {
				t.Fatalf("%s: request %d attempts went to %v", name, i/3, hits[i:i+3])
			}
		}
	}
}

// TestClassify_ServerClosedIdleIsUnprocessed: net/http's "server closed
// idle connection" — the server closed the connection while no request
// was on it — is retried for every method, however it is wrapped; the
// same words in a server's answer are not that error. The text is
// net/http's (its error is unexported), so the test also checks that
// net/http still says it.
func TestClassify_ServerClosedIdleIsUnprocessed(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src", "net", "http", "transport.go"))
	if err != nil {
		t.Fatalf("net/http's source, to check the error's text: %v", err)
	}
	if !strings.Contains(string(src), `errServerClosedIdle = errors.New("`+errServerClosedIdleText+`")`) {
		t.Fatalf("net/http no longer declares errServerClosedIdle as %q; update errServerClosedIdleText", errServerClosedIdleText)
	}
	closed := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/echo", Err: errors.New(errServerClosedIdleText)}
	for name, err := range map[string]error{
		"as net/http returns it": closed,
		"wrapped":                fmt.Errorf("attempt 1 on echo-1: %w", closed),
		"joined":                 errors.Join(errors.New("other"), closed),
	} {
		if got := classify(err); got != retry.Unprocessed {
			t.Errorf("%s: class %v, want unprocessed", name, got)
		}
	}
	answer := &Error{Status: 500, Code: "internal", Message: "upstream: " + errServerClosedIdleText}
	if got := classify(answer); got == retry.Unprocessed {
		t.Errorf("a 500 whose message quotes the error is unprocessed")
	}
}

// A path an HTTP server would not route as written ("." or ".." segments,
// an empty one inside it) is refused before anything is sent, as an
// invalid argument, instead of reaching another route (or a redirect).
func TestCall_UnroutablePathIsRefusedBeforeSending(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	for _, path := range []string{"/items/.", "/items/..", "/items//refund", "/items/../admin?x=1", "items/apple", ""} {
		_, err := Call[echoReq, echoResp](context.Background(), c, "PUT", path, echoReq{})
		if !errors.Is(err, ErrUnroutablePath) || svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Errorf("%s: err = %v, want ErrUnroutablePath (invalid_argument)", path, err)
		}
	}
	// An empty method (net/http would send GET) or one that is no HTTP
	// token is refused the same way.
	for _, method := range []string{"", "G ET", "GET\n"} {
		_, err := Call[echoReq, echoResp](context.Background(), c, method, "/items/a", echoReq{})
		if !errors.Is(err, ErrBadMethod) || svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Errorf("method %q: err = %v, want ErrBadMethod (invalid_argument)", method, err)
		}
	}
	if h := b.hits.Load(); h != 0 {
		t.Fatalf("%d unroutable calls reached the instance", h)
	}
	for _, path := range []string{"/items/a.b", "/.well-known/x", "/items/", "/items/x?next=/a//b/.."} {
		if _, err := Call[echoReq, echoResp](context.Background(), c, "PUT", path, echoReq{}); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// A call cut by its deadline — the caller's context's or the call's own
// Timeout — says which service it was calling and is still a deadline
// error (net/http's message names only an address).
func TestInvoke_ACallCutByItsDeadlineNamesTheServiceAndStaysADeadlineError(t *testing.T) {
	b := startBackend(t, "", nil)
	b.delay.Store(int64(5 * time.Second))
	c := newClient(t, newRegistry(t, b.inst))
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		byCtx := c.Invoke(ctx, method, "/echo", map[string]int{"a": 1}, nil)
		cancel()
		byOption := c.Invoke(context.Background(), method, "/echo", map[string]int{"a": 1}, nil, Timeout(200*time.Millisecond))
		for _, err := range []error{byCtx, byOption} {
			if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(fmt.Sprint(err), "client echo: ") {
				t.Errorf("%s cut by its deadline: %v; want a deadline error starting \"client echo: \"", method, err)
			}
		}
	}
}
