package meshview

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/warren-mesh/warren/framework/httptransport"
)

//go:embed static
var static embed.FS

// HandlerOption configures Handler.
type HandlerOption func(*handler)

// WithMinInterval sets the shortest time between two pushes to one page
// (default 250 ms): a burst of changes is sent as one state.
func WithMinInterval(d time.Duration) HandlerOption { return func(h *handler) { h.minInterval = d } }

// WithStreamRate bounds the bytes per second one page's event stream
// sends (default 1 MiB/s): after a state of n bytes the next waits
// n/rate, if that is longer than the minimum interval. A small mesh's
// state (tens of KB) is not held back; a fleet's is: at 18,000 instances
// a state is ~13 MB, and sent after every probe round it was 101 MB in
// 10 s to one page, for nothing a browser can render that often (report
// j50d).
func WithStreamRate(bytesPerSec int) HandlerOption {
	return func(h *handler) {
		if bytesPerSec > 0 {
			h.rate = bytesPerSec
		}
	}
}

// WithHeartbeat sets how often an idle event stream gets a comment line
// (default 15 s), so proxies keep it open and a dead page is noticed.
func WithHeartbeat(d time.Duration) HandlerOption { return func(h *handler) { h.heartbeat = d } }

// WithAllowedHosts adds names the page answers to. It answers a Host that
// is an IP address or localhost, and these; any other gets 421, so a
// DNS-rebinding page in the operator's browser cannot read the mesh's
// state (httptransport.AllowedHosts). Give the listen host when it is a
// name, and the names the page is reached by.
func WithAllowedHosts(hosts ...string) HandlerOption {
	return func(h *handler) { h.hosts = append(h.hosts, hosts...) }
}

type handler struct {
	v           *View
	minInterval time.Duration
	rate        int // bytes per second of one event stream
	heartbeat   time.Duration
	hosts       []string
}

// newHandler is a page's handler with the documented defaults (at most
// four pushes a second, 1 MiB/s, a heartbeat every 15 s) and opts.
func newHandler(v *View, opts []HandlerOption) *handler {
	h := &handler{v: v, minInterval: 250 * time.Millisecond, rate: 1 << 20, heartbeat: 15 * time.Second}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Handler serves the page and its data:
//
//	GET /            the page (embedded; no external resources)
//	GET /static/…    its script and style sheet
//	GET /api/state   the current Snapshot as JSON
//	GET /api/events  server-sent events: one "state" event with the whole
//	                 Snapshot at once and after every change
//
// to requests whose Host is an IP address, localhost or a name of
// WithAllowedHosts; others get 421.
func Handler(v *View, opts ...HandlerOption) http.Handler {
	h := newHandler(v, opts)
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary: cannot happen
	}
	mux := http.NewServeMux()
	files := http.FileServerFS(sub)
	mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.HandleFunc("GET /api/state", h.state)
	mux.HandleFunc("GET /api/events", h.events)
	return httptransport.AllowedHosts(secure(mux), "--page-allowed-hosts", h.hosts...)
}

// secure adds headers that keep the page to its own resources.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) state(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(h.v.Snapshot())
}

// events streams the state: the whole Snapshot at once, then again after
// each change, at most once per minInterval and at most rate bytes a
// second. The page never polls.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	changed, unsubscribe := h.v.Subscribe()
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A stream lives long: no server write deadline applies to it.
	_ = rc.SetWriteDeadline(time.Time{})
	// send returns how long to wait before the next state: the minimum
	// interval, or the state's size at the stream's rate.
	send := func() (time.Duration, error) {
		b, err := json.Marshal(h.v.Snapshot())
		if err != nil {
			return 0, err
		}
		if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
			return 0, err
		}
		return max(h.minInterval, time.Duration(len(b))*time.Second/time.Duration(h.rate)), rc.Flush()
	}
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return
	}
	wait, err := send()
	if err != nil {
		return
	}
	// Until then, changes only mark the stream dirty.
	next := time.Now().Add(wait)
	beat := time.NewTicker(h.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-changed:
			// Coalesce: whatever changes until the next send goes in it.
			// The heartbeat keeps going meanwhile.
			hold := time.NewTimer(time.Until(next))
		wait:
			for {
				select {
				case <-r.Context().Done():
					hold.Stop()
					return
				case <-beat.C:
					if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
						hold.Stop()
						return
					}
				case <-hold.C:
					break wait
				}
			}
			if wait, err = send(); err != nil {
				return
			}
			next = time.Now().Add(wait)
		}
	}
}
