package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
)

// ErrInvalidConfig is returned (wrapped, with nginx's own message) when
// nginx -t refuses a rendered file. The Syncer has put the last good file
// back by then, so nginx keeps serving the previous set.
var ErrInvalidConfig = errors.New("nginx refused the rendered config")

// ErrTestFailed is returned (wrapped, with nginx's own message) when
// nginx -t fails with the last good upstreams file as well as with the
// new one: the fault is elsewhere (nginx.conf, a file it includes, the
// host). The last good file is back in place; the next Apply tests again,
// so fixing the fault is enough for the new set to go out.
var ErrTestFailed = errors.New("nginx -t fails outside the rendered file")

// Control is how a Syncer reaches nginx.
type Control interface {
	// Test validates the whole configuration as it is on disk (nginx -t).
	Test(ctx context.Context) error
	// Reload makes the running nginx load it (nginx -s reload).
	Reload(ctx context.Context) error
}

// Command controls an nginx through its binary: Test runs
// `nginx -t -q [-p Prefix] [-c Conf]`, Reload `nginx -s reload` with the
// same flags (which signals the master named by the config's pid file).
type Command struct {
	Bin    string // default "nginx" from PATH
	Prefix string // -p; empty: nginx's compiled-in prefix
	Conf   string // -c; empty: nginx's compiled-in nginx.conf
}

func (c Command) args(extra ...string) []string {
	var a []string
	if c.Prefix != "" {
		a = append(a, "-p", c.Prefix)
	}
	if c.Conf != "" {
		a = append(a, "-c", c.Conf)
	}
	return append(a, extra...)
}

func (c Command) run(ctx context.Context, extra ...string) error {
	bin := binary(c.Bin)
	out, err := exec.CommandContext(ctx, bin, c.args(extra...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", bin, strings.Join(extra, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Test implements Control.
func (c Command) Test(ctx context.Context) error { return c.run(ctx, "-t", "-q") }

// Reload implements Control.
func (c Command) Reload(ctx context.Context) error { return c.run(ctx, "-s", "reload") }

// Syncer writes the upstreams file and has nginx load it. Apply is its
// edge.Watcher apply function.
type Syncer struct {
	path string
	r    *Renderer
	ctl  Control

	mu      sync.Mutex
	applied []byte // the content nginx was last reloaded with
	// unsure: a reload failed since, so nginx may run another file (a
	// hung master takes the SIGHUP once it runs again and loads what is
	// on disk; a restarted one reads it): applied is no reason to skip a
	// Sync until a reload succeeds.
	unsure bool
	// wrote: the file on disk is one this Syncer put there (nginx -t
	// passed), not the previous run's, even if its reload failed.
	wrote bool
	stats Stats
}

// Stats counts what a Syncer did.
type Stats struct {
	Reloads  int // successful reloads
	Rejected int // renders nginx -t refused (the last good file was put back)
	Failed   int // reloads, writes or nginx -t runs that failed for another reason
}

// NewSyncer returns a Syncer writing path (its directory must exist and
// be writable) with r and reaching nginx through ctl.
func NewSyncer(path string, r *Renderer, ctl Control) (*Syncer, error) {
	if path == "" || r == nil || ctl == nil {
		return nil, errors.New("nginx: NewSyncer needs a path, a renderer and a control")
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("nginx: upstreams file: %w", err)
	}
	// Every write is a new file renamed over the old one: a directory
	// that does not take one fails here, at start, not at the first
	// update.
	if err := checkWritable(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("nginx: upstreams file: %w", err)
	}
	return &Syncer{path: path, r: r, ctl: ctl}, nil
}

// Stats returns the counts so far.
func (s *Syncer) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Result says what one Sync did.
type Result struct {
	// Written: the file changed, nginx -t passed and nginx was reloaded.
	Written bool
	// Unlisted are the services the registry has not listed yet
	// (edge.Service.Unlisted).
	Unlisted []string
	// Kept: because of Unlisted, the existing file (the last good set
	// from before the start) was left as it is, whole: nothing was
	// written or reloaded.
	Kept bool
	// Placeholders are the Unlisted services the kept file has only the
	// down placeholder for: the previous run did not follow them (Start
	// added the placeholder). Known only when the Control is a Process;
	// empty otherwise.
	Placeholders []string
	// Skipped names, per service, the instances left out for want of a
	// usable http endpoint (gRPC-only, or https only), "service: id,id"
	// one service after the other; empty when none was.
	Skipped string
	// Unresolved names, the same way, the instances left out because
	// nginx -t refused the set and their host name does not resolve; the
	// set without them was loaded if Written, and Sync's error makes the
	// watcher try the whole set again.
	Unresolved string
}

// Apply is Sync without its Result: the edge.Watcher apply function.
func (s *Syncer) Apply(ctx context.Context, snap edge.Snapshot) error {
	_, err := s.Sync(ctx, snap)
	return err
}

// Sync renders snap and, when the file changes, writes it atomically,
// validates it with nginx -t and reloads nginx. If nginx -t fails, the
// previous file is restored and nginx keeps running the previous set; the
// error wraps ErrInvalidConfig when the new file is at fault, ErrTestFailed
// when nginx -t fails with the previous file too. Every Apply of a set not
// yet loaded runs nginx -t again: a failure may come from outside the file
// (nginx.conf, a host name nginx could not resolve) and go away. After a
// failed reload every Sync writes, tests and reloads, even of the set
// last loaded, until a reload succeeds: nginx may load the file on disk
// later (a hung master, a restart), so it must hold the current set.
//
// A set nginx -t refuses because an instance's host name does not
// resolve (nginx resolves names when it loads the file) goes out without
// the instances whose name does not resolve (Result.Unresolved); the
// error says so and makes the watcher try the whole set again, so the
// others are not held back while that record stays or DNS is down.
//
// Until the Syncer has written a file (one nginx -t passed, reloaded or
// not), a snapshot with a service the registry has not listed
// (edge.Service.Unlisted: unreachable since the start) leaves an
// existing file as it is: it is the last good set from before the
// restart, and rendering would turn that service into an empty upstream. With no existing file there is nothing better than the
// placeholder; neither is there when the Control is a Process whose Start
// found no previous set for any unlisted service (Process.Previous): the
// set is then written, placeholders for the unlisted services.
func (s *Syncer) Sync(ctx context.Context, snap edge.Snapshot) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res Result
	for _, svc := range snap.Services {
		if svc.Unlisted {
			res.Unlisted = append(res.Unlisted, svc.Name)
		}
	}
	d := s.r.Data(snap)
	var skipped []string
	for _, u := range d.Upstreams {
		if len(u.SkippedIDs) > 0 {
			skipped = append(skipped, u.Name+": "+strings.Join(u.SkippedIDs, ","))
		}
	}
	res.Skipped = strings.Join(skipped, "; ")
	next, err := s.r.render(d)
	if err != nil {
		return res, err
	}
	if s.applied != nil && !s.unsure && bytes.Equal(next, s.applied) {
		return res, nil
	}
	prev, err := os.ReadFile(s.path)
	hadPrev := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("nginx: read %s: %w", s.path, err)
	}
	if hadPrev && !s.wrote && len(res.Unlisted) > 0 {
		// Keep the file only when it holds something better than a
		// placeholder for an unlisted service. Where the Control says
		// which services the file has a previous set for (a Process:
		// Start wrote the file), a file of placeholders alone for every
		// unlisted service is not kept: rendering gives the same
		// placeholders and the listed services their sets.
		worth := true
		if pf, ok := s.ctl.(interface{ Previous() []string }); ok {
			prev := pf.Previous()
			worth = false
			for _, u := range res.Unlisted {
				if slices.Contains(prev, u) {
					worth = true
				} else {
					res.Placeholders = append(res.Placeholders, u)
				}
			}
		}
		if worth {
			res.Kept = true
			return res, nil
		}
		res.Placeholders = nil
	}
	err = s.load(ctx, next, prev, hadPrev)
	if err == nil {
		res.Written = true
		return res, nil
	}
	if !errors.Is(err, ErrInvalidConfig) && !errors.Is(err, ErrTestFailed) {
		return res, err
	}
	// nginx resolves host names when it loads the file, and one name that
	// does not resolve fails nginx -t for the whole file: every later set
	// would be refused while that record stays (or while DNS is down),
	// withdrawals of the other instances included. The set without those
	// instances goes out, and the error makes the watcher try the whole
	// set again.
	partial, left := withoutUnresolvable(ctx, d)
	if len(left) == 0 {
		return res, err
	}
	res.Unresolved = strings.Join(left, "; ")
	pnext, rerr := s.r.render(partial)
	if rerr != nil {
		return res, err
	}
	if s.applied == nil || s.unsure || !bytes.Equal(pnext, s.applied) {
		if perr := s.load(ctx, pnext, prev, hadPrev); perr != nil {
			return res, err
		}
		res.Written = true
	}
	return res, fmt.Errorf("nginx: applied without the instances whose host name does not resolve (%s); the whole set is tried again on the next Apply: %w", res.Unresolved, err)
}

// load writes next, has nginx -t check it and reloads nginx. If nginx -t
// fails, prev (or no file, without hadPrev) is put back and the error
// wraps ErrInvalidConfig or ErrTestFailed (see Sync).
func (s *Syncer) load(ctx context.Context, next, prev []byte, hadPrev bool) error {
	if err := writeAtomic(s.path, next); err != nil {
		s.stats.Failed++
		return err
	}
	if err := s.ctl.Test(ctx); err != nil {
		var restore error
		if hadPrev {
			restore = writeAtomic(s.path, prev)
		} else {
			restore = os.Remove(s.path)
		}
		if restore != nil {
			s.stats.Failed++
			return fmt.Errorf("nginx: %w: %w; restoring the previous file also failed: %w", ErrInvalidConfig, err, restore)
		}
		// Whose fault: nginx -t with the last good file back tells.
		if hadPrev {
			if perr := s.ctl.Test(ctx); perr != nil {
				s.stats.Failed++
				return fmt.Errorf("nginx: %w (it fails with the previous upstreams file too; that file is kept and the new set is tested again on the next try): %w", ErrTestFailed, err)
			}
		}
		s.stats.Rejected++
		return fmt.Errorf("nginx: %w (previous file kept): %w", ErrInvalidConfig, err)
	}
	s.wrote = true
	if err := s.ctl.Reload(ctx); err != nil {
		s.stats.Failed++
		s.unsure = true
		return fmt.Errorf("nginx: reload: %w", err)
	}
	s.stats.Reloads++
	s.applied, s.unsure = next, false
	return nil
}

// withoutUnresolvable returns d without the servers whose host is a name
// that does not resolve, and those servers, "service: id,id" per
// service. The names are looked up side by side, 2 s for all of them (a
// DNS outage must not hold the watcher for 2 s per name); one not
// answered by then counts as not resolving. Only called once nginx -t
// has failed.
func withoutUnresolvable(ctx context.Context, d Data) (Data, []string) {
	names := map[string]bool{}
	for _, u := range d.Upstreams {
		for _, sv := range u.Servers {
			host, _, err := net.SplitHostPort(sv.Address)
			if err != nil {
				continue
			}
			if _, perr := netip.ParseAddr(host); perr != nil {
				names[host] = true // a name, not an address
			}
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		failed = map[string]bool{}
	)
	for name := range names {
		wg.Add(1)
		go func() { // owned by withoutUnresolvable: ends with lctx at the latest
			defer wg.Done()
			_, err := net.DefaultResolver.LookupHost(lctx, name)
			mu.Lock()
			failed[name] = err != nil
			mu.Unlock()
		}()
	}
	wg.Wait()
	var left []string
	out := d
	out.Upstreams = make([]Upstream, len(d.Upstreams))
	for i, u := range d.Upstreams {
		var ids []string
		kept := make([]Server, 0, len(u.Servers))
		for _, sv := range u.Servers {
			if host, _, err := net.SplitHostPort(sv.Address); err == nil && failed[host] {
				ids = append(ids, sv.ID)
				continue
			}
			kept = append(kept, sv)
		}
		u.Servers = kept
		out.Upstreams[i] = u
		if len(ids) > 0 {
			left = append(left, u.Name+": "+strings.Join(ids, ","))
		}
	}
	return out, left
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over it, so nginx never reads half a
// file.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("nginx: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("nginx: write %s: %w", path, err)
	}
	return nil
}

// binary resolves the nginx binary: name as given, "nginx" when empty, and
// Debian's /usr/sbin/nginx when a bare "nginx" is not on PATH (a non-root
// PATH often lacks /usr/sbin).
func binary(name string) string {
	if name == "" {
		name = "nginx"
	}
	if name == "nginx" {
		if _, err := exec.LookPath(name); err != nil {
			if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
				return "/usr/sbin/nginx"
			}
		}
	}
	return name
}
