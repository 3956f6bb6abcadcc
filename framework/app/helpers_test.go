package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// journal is one ordered record of phases (from the log) and registry
// calls, so tests can assert what happened before what.
type journal struct {
	mu      sync.Mutex
	entries []string
	errs    map[string]string // phase → the err its line logged
	levels  map[string]string // phase → the level its line logged at
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// phaseLevel is the level the last line of phase logged at.
func (j *journal) phaseLevel(phase string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.levels[phase]
}

// phaseErr is the err the last line of phase logged.
func (j *journal) phaseErr(phase string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.errs[phase]
}

// Log implements log.Logger: it records "phase:<name>" for phase lines,
// and their err.
func (j *journal) Log(kv ...any) error {
	var phase, errText, lvl string
	for i := 0; i+1 < len(kv); i += 2 {
		switch fmt.Sprint(kv[i]) {
		case "level":
			lvl = fmt.Sprint(kv[i+1])
		case "phase":
			phase = fmt.Sprint(kv[i+1])
		case "err":
			errText = fmt.Sprint(kv[i+1])
		}
	}
	if phase != "" {
		j.add("phase:" + phase)
		j.mu.Lock()
		if j.errs == nil {
			j.errs, j.levels = map[string]string{}, map[string]string{}
		}
		j.errs[phase], j.levels[phase] = errText, lvl
		j.mu.Unlock()
	}
	return nil
}

// recorder is a memory registry that writes its calls into the journal.
type recorder struct {
	*memory.Registry
	j *journal
}

func (r recorder) Register(ctx context.Context, i registry.Instance) error {
	r.j.add("registry:register")
	return r.Registry.Register(ctx, i)
}

func (r recorder) Deregister(ctx context.Context, i registry.Instance) error {
	r.j.add("registry:deregister")
	return r.Registry.Deregister(ctx, i)
}

func (r recorder) Close() error {
	r.j.add("registry:close")
	return r.Registry.Close()
}

func indexOf(list []string, s string) int { return slices.Index(list, s) }

func testOptions(j *journal, extra ...Option) []Option {
	return append([]Option{
		WithListen("127.0.0.1:0"),
		WithLogger(j),
		WithGracePeriod(0),
		WithSignals(false),
		WithSelfCheckTimeout(2 * time.Second),
	}, extra...)
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
}

// start runs a in the background and waits until it is ready.
func start(t *testing.T, a *App, ctx context.Context) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s")
	}
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s")
		return nil
	}
}

func status(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type readyBody struct {
	Status string `json:"status"`
	Checks map[string]struct {
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

func readyz(t *testing.T, a *App) readyBody {
	t.Helper()
	resp, err := http.Get(a.Instance().Endpoints[0] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b readyBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ log.Logger = (*journal)(nil)

// failingDeregister is a memory registry whose Deregister fails, as a
// registry does that could not withdraw the instance or confirm it.
type failingDeregister struct{ *memory.Registry }

func (failingDeregister) Deregister(context.Context, registry.Instance) error {
	return errors.New("deregister: servers unreachable")
}

// startStop runs an App of reg until it is ready, then cancels it and
// waits for Run to return.
func startStop(t *testing.T, name string, reg registry.Registry, opts ...Option) {
	t.Helper()
	a, err := New(name, okHandler(), reg, testOptions(&journal{}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	wait(t, done)
}
