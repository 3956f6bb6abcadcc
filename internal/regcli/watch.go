package regcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"golang.org/x/sync/errgroup"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/meshview"
)

// WatchUsage is `warren watch`'s one-line summary.
const WatchUsage = "watch SERVICE... stream the changes discovery sees for the services (Ctrl-C ends)"

// WatchLine is one line of `warren watch --json`.
type WatchLine struct {
	Time     time.Time          `json:"time"`
	Kind     string             `json:"kind"` // present, register, update, withdraw, skipped, error, recovered
	Service  string             `json:"service"`
	Instance string             `json:"instance,omitempty"`
	Detail   string             `json:"detail,omitempty"`
	Record   *registry.Instance `json:"record,omitempty"`
}

// KindPresent marks the instances already registered when the watch began.
const KindPresent = "present"

// KindSkipped marks an entry the registry lists but discovery leaves out
// (a Kubernetes Pod that is ready but has an unusable annotation), with
// why; printed when it is first seen skipped, or for another reason.
const KindSkipped = "skipped"

// Watch is `warren watch [flags] SERVICE...`: each service's instances
// present, then one line per change, until ctx ends (nil then). Several
// services are watched at once, their lines interleaved as they come
// (report j47c: an incident spans caller and callee).
func Watch(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("warren watch", flag.ContinueOnError)
	reg, err := BindRegistry(fs, env.Backends)
	if err != nil {
		return err
	}
	asJSON := fs.Bool("json", false, "print one JSON object per line, with the whole record")
	if err := Parse(fs, args, env.Stdout, "Usage: warren watch [flags] SERVICE...\n\nPrints the instances of each SERVICE, then every change discovery sees, until interrupted."); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() == 0 {
		return usagef("warren watch takes at least one SERVICE")
	}
	var svcs []string
	for _, svc := range fs.Args() {
		if !registry.ValidName(svc) {
			return usagef("service %q: want a lower-case DNS label (letters, digits, dashes)", svc)
		}
		if !slices.Contains(svcs, svc) {
			svcs = append(svcs, svc)
		}
	}
	r, err := reg.Open(ctx)
	if err != nil {
		return err // names the backend
	}
	defer r.Close()
	return watchAll(ctx, env, r, svcs, *asJSON)
}

// watchAll runs one watch per service; the first to fail ends the others
// and its error is returned. Lines are written whole, one at a time.
func watchAll(ctx context.Context, env Env, d registry.Discovery, svcs []string, asJSON bool) error {
	env.Stdout = &lockedWriter{w: env.Stdout}
	g, ctx := errgroup.WithContext(ctx)
	for _, svc := range svcs {
		g.Go(func() error { return watch(ctx, env, d, svc, asJSON) })
	}
	err := g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// lockedWriter serialises the writes of concurrent watches.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func watch(ctx context.Context, env Env, d registry.Discovery, svc string, asJSON bool) error {
	print := func(l WatchLine) error {
		if asJSON {
			return json.NewEncoder(env.Stdout).Encode(l)
		}
		id := l.Instance
		if id == "" {
			id = "-"
		}
		_, err := fmt.Fprintf(env.Stdout, "%s  %-9s  %s  %s  %s\n", l.Time.Format("15:04:05.000"), l.Kind, svc, printable(id), printable(l.Detail))
		return err
	}
	var set map[string]registry.Instance
	lastErr := ""
	said := map[string]string{} // skipped id → the reason last printed
	err := follow(ctx, d, svc, func(ev sd.Event, skipped []skip) (bool, error) {
		now := env.now()
		if ev.Err != nil {
			if msg := ev.Err.Error(); msg != lastErr {
				lastErr = msg
				if err := print(WatchLine{Time: now, Kind: meshview.KindError, Service: svc, Detail: msg}); err != nil {
					return true, err
				}
			}
			if len(ev.Instances) == 0 {
				return false, nil // the backend keeps its last good set: so do we
			}
		} else if lastErr != "" {
			lastErr = ""
			if err := print(WatchLine{Time: now, Kind: meshview.KindRecovered, Service: svc, Detail: "discovery answers again"}); err != nil {
				return true, err
			}
		}
		first := set == nil
		changes, next := meshview.Diff(set, ev.Instances)
		set = next
		for _, c := range changes {
			l := WatchLine{Time: now, Kind: c.Kind, Service: svc, Detail: c.Detail()}
			switch c.Kind {
			case meshview.KindWithdraw:
				// watch does not probe the instance as the mesh page
				// does, so it cannot tell a withdrawal from an expiry;
				// on Kubernetes a Pod turning NotReady leaves too.
				l.Instance, l.Detail = c.Old.ID, "left discovery (withdrawn, its record expired, or no longer ready)"
			default:
				l.Instance = c.New.ID
				rec := c.New
				l.Record = &rec
				if first {
					l.Kind = KindPresent
				}
			}
			if err := print(l); err != nil {
				return true, err
			}
		}
		if first && len(changes) == 0 {
			if err := print(WatchLine{Time: now, Kind: KindPresent, Service: svc, Detail: "no instances"}); err != nil {
				return true, err
			}
		}
		skips := make(map[string]string, len(skipped))
		for _, sk := range skipped {
			skips[sk.id] = sk.reason
			if said[sk.id] == sk.reason {
				continue
			}
			if err := print(WatchLine{Time: now, Kind: KindSkipped, Service: svc, Instance: sk.id, Detail: sk.reason + " (ready, not served to callers)"}); err != nil {
				return true, err
			}
		}
		said = skips
		return false, nil
	})
	if ctx.Err() != nil {
		return nil // interrupted: the normal end of a watch
	}
	return err
}
