// Package e2e runs the demo mesh exactly as `make up` does (devmesh: real
// embedded etcd, real service processes) and walks the README's flow.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := devmesh.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func post(t *testing.T, url, body string, out any) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %d %s: %v", url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func TestMesh_DemoFlowSurvivesAUserInstanceKillAndStopsClean(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole mesh")
	}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m, err := devmesh.Start(ctx, devmesh.Config{
		Root: moduleRoot(t), StateDir: t.TempDir(), Out: out, TTL: 3 * time.Second,
		Backends: []devmesh.Backend{etcddev.Backend()},
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	stopped := false
	defer func() {
		if !stopped {
			m.Stop()
		}
		if t.Failed() {
			t.Logf("mesh output:\n%s", out)
		}
	}()
	var summary bytes.Buffer
	m.PrintSummary(&summary)
	for _, want := range []string{"user-1", "user-2", "order-1", "order-2", "curl -s -X POST"} {
		if !strings.Contains(summary.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, summary.String())
		}
	}

	userURL := m.Instance("user", 1).Registered.Endpoints[0]
	orderURL := m.Instance("order", 1).Registered.Endpoints[0]

	// Step 1 of the printed flow: create a user.
	var u struct{ ID, Name string }
	if st := post(t, userURL+"/users", `{"name":"Ada Lovelace","email":"ada@example.com"}`, &u); st != 201 || u.ID == "" {
		t.Fatalf("create user: %d %+v", st, u)
	}
	// The mesh is ready when every instance is registered and ready, but an
	// order instance that started before the user instances registered
	// learns of them from its watch a moment later. Wait for that, as a
	// user at a terminal does without noticing: an unknown user answers
	// 422 only once order reaches a user instance (503 before).
	for i := 1; i <= 2; i++ {
		waitSeesUsers(t, m.Instance("order", i).Registered.Endpoints[0])
	}
	// Step 2: place an order; the order service finds the user through discovery.
	order := fmt.Sprintf(`{"user_id":%q,"items":[{"sku":"book","quantity":2,"price_cents":1250}]}`, u.ID)
	var o struct {
		ID         string `json:"id"`
		UserName   string `json:"user_name"`
		TotalCents int64  `json:"total_cents"`
	}
	if st := post(t, orderURL+"/orders", order, &o); st != 201 || o.UserName != "Ada Lovelace" || o.TotalCents != 2500 {
		t.Fatalf("create order: %d %+v", st, o)
	}
	// Step 3: list from the other order instance (shared demo store).
	resp, err := http.Get(m.Instance("order", 2).Registered.Endpoints[0] + "/orders?user_id=" + u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var page struct{ Orders []struct{ ID string } }
	json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if len(page.Orders) != 1 || page.Orders[0].ID != o.ID {
		t.Fatalf("list: %+v", page)
	}
	// An unknown user reads clearly.
	var e struct{ Error, Code string }
	if st := post(t, orderURL+"/orders", `{"user_id":"u-nobody","items":[{"sku":"a","quantity":1}]}`, &e); st != 422 || e.Code != "unknown_user" {
		t.Fatalf("unknown user: %d %+v", st, e)
	}

	// Kill one user instance without a goodbye: its record stays until the
	// lease expires, so order's client meets refused connections and must
	// retry on the other instance. No order may fail.
	if err := m.Kill(m.Instance("user", 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		var o struct{ ID string }
		if st := post(t, orderURL+"/orders", order, &o); st != 201 {
			t.Fatalf("order %d after killing user-1: status %d", i, st)
		}
	}

	// Ctrl-C path: ordered stop, no registration left (the killed
	// instance's record expires by TTL and is not counted), no process left.
	stopped = true
	if err := m.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, in := range m.Instances() {
		select {
		case <-in.Exited():
		default:
			t.Fatalf("%s still running", in.ID())
		}
		if err := syscall.Kill(in.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("%s (pid %d) still exists: %v", in.ID(), in.Pid(), err)
		}
	}
	if !strings.Contains(out.String(), "no registration left") {
		t.Fatalf("stop did not confirm deregistration:\n%s", out)
	}
}

// waitSeesUsers waits (at most 30 s) until the order instance at url
// reaches the user service through discovery.
func waitSeesUsers(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var e struct{ Code string }
		st := post(t, url+"/orders", `{"user_id":"u-nobody","items":[{"sku":"a","quantity":1}]}`, &e)
		if st == http.StatusUnprocessableEntity && e.Code == "unknown_user" {
			return
		}
		if st != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("order at %s does not reach user: %d %+v", url, st, e)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
