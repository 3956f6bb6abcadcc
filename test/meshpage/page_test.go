// Package meshpage tests the live mesh page in a real headless Chromium
// against a mesh started as `make up` starts it (devmesh: embedded etcd,
// real service processes): what it shows, that it follows discovery
// without polling, keyboard use and contrast, and that a killed instance
// leaves it.
package meshpage

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/internal/meshview"
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

// requestCounter counts the page's requests by path.
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n[r.URL.Path]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *requestCounter) get(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

// servePage serves the page of m as cmd/meshup does (meshview over the
// launcher's registry client), counting requests.
func servePage(t *testing.T, m *devmesh.Mesh) (string, *requestCounter) {
	t.Helper()
	v, err := meshview.New(m.Discovery(), meshview.WithRegistryName("etcd"), meshview.WithServices(m.Services()...))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counter := &requestCounter{n: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &http.Server{Handler: counter.wrap(meshview.Handler(v)), BaseContext: func(net.Listener) context.Context { return ctx }}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); v.Run(ctx) }()
	go func() { defer wg.Done(); srv.Serve(ln) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/", counter
}

// traffic sends the demo's calls (order → user through discovery) every
// 100 ms until the test ends.
func traffic(t *testing.T, m *devmesh.Mesh) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	post := func(url, body string) string {
		resp, err := c.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var userID string
	deadline := time.Now().Add(60 * time.Second)
	for userID == "" && time.Now().Before(deadline) {
		body := post(m.Instance("user", 1).Registered.Endpoints[0]+"/users", `{"name":"Ada Lovelace","email":"ada@example.com"}`)
		if _, rest, ok := strings.Cut(body, `"id":"`); ok {
			userID, _, _ = strings.Cut(rest, `"`)
		}
	}
	if userID == "" {
		t.Fatal("could not create the demo user")
	}
	orders := []string{m.Instance("order", 1).Registered.Endpoints[0], m.Instance("order", 2).Registered.Endpoints[0]}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // owned by the test: ends at cleanup
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			post(orders[i%2]+"/orders", fmt.Sprintf(`{"user_id":%q,"items":[{"sku":"book","quantity":1,"price_cents":1250}]}`, userID))
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// waitGone waits until the launcher's own discovery no longer shows id.
func waitGone(t *testing.T, d registry.Discovery, service, id string, timeout time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ins, err := d.Instancer(ctx, service)
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Stop()
	var at time.Time
	err = registry.Follow(ctx, ins, func(ev sd.Event) bool {
		present := slices.ContainsFunc(ev.Instances, func(s string) bool {
			i, err := registry.ParseInstance(s)
			return err == nil && i.ID == id
		})
		if !present && ev.Err == nil {
			at = time.Now()
			return true
		}
		return false
	})
	if err != nil {
		t.Fatalf("%s still in discovery after %s", id, timeout)
	}
	return at
}

func row(id string) string { return fmt.Sprintf(`document.querySelector('tr[data-instance=%q]')`, id) }

// poll waits in the page for a JavaScript condition; on failure it shows
// what the page showed.
func poll(t *testing.T, ctx context.Context, timeout time.Duration, what, js string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(0))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v (within %s); the page showed:\n%s", what, err, timeout, text)
	}
}

// screenshot checks the page renders as a laptop-sized PNG and, with
// WARREN_SCREENSHOTS=DIR, keeps it there (docs/ holds the ones the docs show).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	b := within(t, ctx, 60*time.Second, "screenshot "+name, chromedp.CaptureScreenshot())
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if w := img.Bounds().Dx(); w != 1366 {
		t.Errorf("screenshot %s is %d px wide, want the 1366 px window", name, w)
	}
	if dir := os.Getenv("WARREN_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMeshPage_ShowsTheLiveMeshInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole mesh and a browser")
	}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := devmesh.Start(ctx, devmesh.Config{
		Root: moduleRoot(t), StateDir: t.TempDir(), Out: out, TTL: 3 * time.Second,
		Backends: []devmesh.Backend{etcddev.Backend()},
	})
	if err != nil {
		t.Fatalf("start the mesh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mesh output:\n%s", out)
		}
	})
	url, counter := servePage(t, m)
	tab := browser(t)

	within(t, tab, 60*time.Second, "open the page", chromedp.Navigate(url))
	poll(t, tab, 60*time.Second, "every instance shown, ready", `['user-1','user-2','order-1','order-2'].every(id => {
		const b = document.querySelector('tr[data-instance="' + id + '"] td:nth-of-type(5) .badge');
		return b && b.textContent === 'ready';
	}) && document.getElementById('conn').textContent === 'live'`)
	// The record's fields, as the registry holds them; every endpoint
	// (http, grpc) is shown, one line each.
	rec := m.Instance("user", 2).Registered
	cells := within(t, tab, 30*time.Second, "read user-2's row", chromedp.Evaluate[[]string](
		`[...`+row("user-2")+`.children].map(c => c.textContent.trim())`))
	if len(cells) < 12 || cells[0] != "user-2" || cells[1] != rec.Zone || cells[2] != "100" || cells[3] != rec.Version ||
		cells[4] != strings.Join(rec.Endpoints, "") || !strings.Contains(cells[6], "ago") {
		t.Errorf("user-2's row %q, want its record %+v", cells, rec)
	}

	// Traffic: order-1 calls user; its rates and its client show.
	traffic(t, m)
	poll(t, tab, 90*time.Second, "order-1's traffic and calls to user", row("order-1")+`.textContent.includes('→ user') &&
		!/^—$/.test(`+row("order-1")+`.children[7].textContent.trim()) && `+row("user-1")+`.children[11].textContent.trim() !== '—'`)

	accessibility(t, tab)
	screenshot(t, tab, "mesh-page.png")

	// A graceful stop: the instance withdraws; the page drops it within
	// 2 s of discovery doing so.
	u2 := m.Instance("user", 2)
	if err := syscall.Kill(u2.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gone := waitGone(t, m.Discovery(), "user", "user-2", 60*time.Second)
	poll(t, tab, 60*time.Second, "user-2 off the page", row("user-2")+` === null`)
	took := time.Since(gone)
	t.Logf("user-2 left the page %s after it left discovery", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("user-2 left the page %s after it left discovery, want within 2 s", took.Round(time.Millisecond))
	}
	poll(t, tab, 30*time.Second, "a withdraw event", `[...document.querySelectorAll('#events li[data-kind="withdraw"]')].some(li => li.textContent.includes('user-2'))`)

	// A crash: the page sees the instance stop answering, then its record
	// expire (TTL 3 s).
	if err := m.Kill(m.Instance("user", 1)); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, 60*time.Second, "user-1 unreachable", row("user-1")+` === null || `+row("user-1")+`.textContent.includes('unreachable')`)
	gone = waitGone(t, m.Discovery(), "user", "user-1", 60*time.Second)
	poll(t, tab, 60*time.Second, "user-1 off the page", row("user-1")+` === null`)
	took = time.Since(gone)
	t.Logf("user-1 left the page %s after its record expired", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("user-1 left the page %s after its record expired, want within 2 s", took.Round(time.Millisecond))
	}
	poll(t, tab, 30*time.Second, "an expire event", `[...document.querySelectorAll('#events li[data-kind="expire"]')].some(li => li.textContent.includes('user-1'))`)
	screenshot(t, tab, "mesh-page-after-kill.png")

	// One event stream the whole time: no polling, no reconnects.
	if n, s := counter.get("/api/events"), counter.get("/api/state"); n != 1 || s != 0 {
		t.Errorf("the page opened /api/events %d times and fetched /api/state %d times, want 1 and 0", n, s)
	}
}

// accessibility checks what a keyboard and a screen reader need, and the
// contrast of the text the page uses, in the rendered page.
func accessibility(t *testing.T, tab context.Context) {
	t.Helper()
	problems := within(t, tab, 30*time.Second, "structure and contrast", chromedp.Evaluate[[]string](a11yScript))
	for _, p := range problems {
		t.Errorf("accessibility: %s", p)
	}
	// Keyboard: Tab reaches the skip link, then the filter; typing filters.
	active := func() string {
		return within(t, tab, 30*time.Second, "focused element", chromedp.Evaluate[string](`(document.activeElement.id || document.activeElement.className || document.activeElement.tagName)`))
	}
	within(t, tab, 30*time.Second, "focus the page", chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(), window.focus()`))
	within(t, tab, 30*time.Second, "Tab", chromedp.KeyEvent(kb.Tab))
	if a := active(); a != "skip" {
		t.Errorf("first Tab focuses %q, want the skip link", a)
	}
	within(t, tab, 30*time.Second, "Tab", chromedp.KeyEvent(kb.Tab))
	if a := active(); a != "filter" {
		t.Errorf("second Tab focuses %q, want the filter", a)
	}
	within(t, tab, 30*time.Second, "type a filter", chromedp.KeyEvent("order"))
	poll(t, tab, 30*time.Second, "the filter leaves only order", `document.querySelector('section[data-service="user"]') === null && document.querySelector('section[data-service="order"]') !== null`)
	within(t, tab, 30*time.Second, "clear the filter", chromedp.KeyEvent(strings.Repeat(kb.Backspace, 5)))
	poll(t, tab, 30*time.Second, "both services again", `document.querySelector('section[data-service="user"]') !== null`)
	// Tab on to the first readiness detail; Enter opens it.
	within(t, tab, 30*time.Second, "Tab to the detail", chromedp.KeyEvent(kb.Tab))
	if a := active(); a != "SUMMARY" {
		t.Fatalf("third Tab focuses %q, want a readiness <summary>", a)
	}
	within(t, tab, 30*time.Second, "Enter", chromedp.KeyEvent(kb.Enter))
	at := within(t, tab, 30*time.Second, "the state's time", chromedp.Evaluate[string](`document.body.dataset.at`))
	poll(t, tab, 60*time.Second, "the detail open, with its checks, focus kept across an update",
		`document.body.dataset.at !== `+fmt.Sprintf("%q", at)+` && document.activeElement.tagName === 'SUMMARY' &&
		 document.activeElement.parentElement.open && document.activeElement.parentElement.textContent.includes('registered')`)
}

// a11yScript returns the problems it finds: structure (language, labels,
// table headers) and WCAG AA contrast (4.5:1) of every text element.
const a11yScript = `(() => {
  const out = [];
  if (document.documentElement.lang !== 'en') out.push('no lang on <html>');
  if (!document.querySelector('main') || !document.querySelector('h1')) out.push('no <main> or <h1>');
  const f = document.getElementById('filter');
  if (!f || f.labels.length === 0) out.push('the filter has no label');
  for (const tb of document.querySelectorAll('table')) {
    if (!tb.caption || !tb.caption.textContent.trim()) out.push('a table without caption');
    for (const th of tb.querySelectorAll('thead th')) if (th.scope !== 'col') out.push('header cell without scope=col: ' + th.textContent);
    for (const r of tb.querySelectorAll('tbody tr')) if (!r.querySelector('th[scope=row]')) out.push('row without a row header');
  }
  const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const c = [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
  const bg = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3); } return [255, 255, 255]; };
  const seen = new Set();
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.offsetParent === null) continue;
    const fg = rgb(getComputedStyle(el).color).slice(0, 3), b = bg(el);
    const [l1, l2] = [lum(fg), lum(b)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const key = el.tagName + '.' + el.className;
    if (ratio < 4.5 && !seen.has(key)) { seen.add(key); out.push('contrast ' + ratio.toFixed(2) + ':1 on ' + key + ' "' + el.textContent.trim().slice(0, 30) + '"'); }
  }
  return out;
})()`
