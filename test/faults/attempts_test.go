package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/outlier"
)

// attempts counts the HTTP attempts a load's client sends, per instance
// (host:port) and outcome. It sits below the client's retries, so a call
// that succeeded on its second try shows here as one failed attempt: the
// failures that retries hide from the caller's error count.
type attempts struct {
	client.NopObserver // and the client's observer: ejections by ID

	mu      sync.Mutex
	byHost  map[string]*hostAttempts
	ejected map[string]int
}

// BreakerChanged implements client.Observer.
func (a *attempts) BreakerChanged(_, instance string, _, to outlier.State) {
	if to == outlier.Open {
		a.mu.Lock()
		a.ejected[instance]++
		a.mu.Unlock()
	}
}

// ejections is how often the client ejected the instance with id.
func (a *attempts) ejections(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ejected[id]
}

// hostAttempts is what one instance was sent.
type hostAttempts struct {
	Total int
	// Failed attempts: no answer (refused, reset, closed) or a 5xx.
	Failed int
	// TimedOut attempts were abandoned by the per-attempt timeout or the
	// call's deadline: a hung instance, or a machine too loaded to answer
	// in time. They are kept apart from Failed because on a loaded CI
	// machine they measure speed, not the lifecycle.
	TimedOut int
	// Shed attempts were refused by the instance's load shedder (503 or
	// 429 with Retry-After): the machine's load, not the lifecycle; the
	// client retries them elsewhere.
	Shed int
	// InProgress attempts were answered idempotency.ErrInProgress: the
	// retry of a keyed call whose earlier attempt timed out reached the
	// service while that attempt still ran (seen once on a loaded machine,
	// before any restart). The load, as TimedOut; checkNoFailedAttempts
	// bounds them by the timeouts, which each can follow at most twice.
	InProgress int
	first      []string
}

func newAttempts() *attempts {
	return &attempts{byHost: map[string]*hostAttempts{}, ejected: map[string]int{}}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// wrap is the client.WithRoundTripper hook.
func (a *attempts) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		inProgress := false
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
			// Read the answer's code, and hand the client the same body.
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(b))
			var answer struct {
				Code string `json:"code"`
			}
			inProgress = rerr == nil && json.Unmarshal(b, &answer) == nil && answer.Code == idempotency.CodeInProgress
		}
		a.record(r, resp, err, inProgress)
		return resp, err
	})
}

func (a *attempts) record(r *http.Request, resp *http.Response, err error, inProgress bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.byHost[r.URL.Host]
	if h == nil {
		h = &hostAttempts{}
		a.byHost[r.URL.Host] = h
	}
	h.Total++
	var what string
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || r.Context().Err() != nil):
		h.TimedOut++
		return
	case err != nil:
		what = err.Error()
	case (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) && resp.Header.Get("Retry-After") != "":
		h.Shed++
		return
	case inProgress:
		h.InProgress++
		return
	case resp.StatusCode >= 500:
		what = fmt.Sprintf("status %d", resp.StatusCode)
	default:
		return
	}
	h.Failed++
	if len(h.first) < 3 {
		h.first = append(h.first, what)
	}
}

// total sums every instance.
func (a *attempts) total() hostAttempts {
	a.mu.Lock()
	defer a.mu.Unlock()
	var t hostAttempts
	for _, h := range a.byHost {
		t.Total += h.Total
		t.Failed += h.Failed
		t.TimedOut += h.TimedOut
		t.Shed += h.Shed
		t.InProgress += h.InProgress
	}
	return t
}

// host returns what one instance was sent.
func (a *attempts) host(hostPort string) hostAttempts {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h := a.byHost[hostPort]; h != nil {
		return *h
	}
	return hostAttempts{}
}

// String lists every instance's counts and its first failures.
func (a *attempts) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	hosts := make([]string, 0, len(a.byHost))
	for h := range a.byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var b strings.Builder
	for _, host := range hosts {
		h := a.byHost[host]
		fmt.Fprintf(&b, "%s: %d attempts, %d failed, %d timed out, %d shed, %d in progress", host, h.Total, h.Failed, h.TimedOut, h.Shed, h.InProgress)
		if len(h.first) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(h.first, "; "))
		}
		b.WriteString("; ")
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// checkNoFailedAttempts fails the test if any attempt of the load failed,
// retried or not. Timed-out attempts are reported, not counted: on a
// loaded machine they measure speed; so are the in-progress answers that
// follow them, up to what the timeouts explain.
func checkNoFailedAttempts(t *testing.T, what string, a *attempts) {
	t.Helper()
	tot := a.total()
	if tot.Failed > 0 {
		t.Errorf("%s: %d of %d attempts failed (retried, so no caller saw them); want 0. %s", what, tot.Failed, tot.Total, a)
	}
	if tot.InProgress > 2*tot.TimedOut {
		t.Errorf("%s: %d attempts answered %q with %d timed out: more than the timeouts explain. %s", what, tot.InProgress, idempotency.CodeInProgress, tot.TimedOut, a)
	}
}
