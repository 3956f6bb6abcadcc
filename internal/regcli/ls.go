package regcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/registry"
)

// Env is what a subcommand gets from main.
type Env struct {
	Stdout, Stderr io.Writer
	Backends       registry.Backends
	// Now is the clock of ages and event times; default time.Now.
	Now func() time.Time
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// LsUsage is `warren ls`'s one-line summary.
const LsUsage = "ls [SERVICE...]  list the instances discovery holds (every service when none is named)"

// Ls is `warren ls [flags] [SERVICE...]`. It returns a Usage error for a
// bad command line.
func Ls(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("warren ls", flag.ContinueOnError)
	reg, err := BindRegistry(fs, env.Backends)
	if err != nil {
		return err
	}
	asJSON := fs.Bool("json", false, "print one JSON object per instance instead of a table")
	timeout := fs.Duration("timeout", 10*time.Second, "give up when the registry has not answered by then")
	if err := Parse(fs, args, env.Stdout, "Usage: warren ls [flags] [SERVICE...]\n\nLists every instance discovery holds, per service."); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	services := fs.Args()
	named := len(services) > 0
	for _, s := range services {
		if !registry.ValidName(s) {
			return usagef("service %q: want a lower-case DNS label (letters, digits, dashes)", s)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := reg.Open(ctx)
	if err != nil {
		return err // names the backend
	}
	defer r.Close()
	if len(services) == 0 {
		cat, ok := r.(registry.Catalog)
		if !ok {
			return usagef("the %s backend cannot list its services: name them (warren ls SERVICE...)", reg.Name())
		}
		if services, err = cat.Services(ctx); err != nil {
			return err
		}
	}
	err = ls(ctx, env, r, services, named, *asJSON)
	var none NoInstance
	if errors.As(err, &none) {
		none.Where, _ = whereEmpty(ctx, reg, r)
		return none
	}
	if errors.Is(err, errNothing) {
		// An empty mesh and a misspelt namespace or root look alike: say
		// what was read (report j47a). A namespace known not to exist is
		// no empty listing but a wrong one: it exits 1, so a script that
		// reads the mesh does not take a typo for a mesh with nothing
		// running.
		where, missing := whereEmpty(ctx, reg, r)
		if missing {
			return fmt.Errorf("nothing to list: %s", where)
		}
		fmt.Fprintf(env.Stderr, "warren ls: nothing registered in %s\n", where)
		return nil
	}
	return err
}

// namespaceChecker is a registry with a namespace that can tell whether it
// exists (kubernetes: listing in a missing namespace answers an empty list).
type namespaceChecker interface {
	Namespace() string
	NamespaceExists(ctx context.Context) (bool, error)
}

// whereEmpty is reg.Where(r) for a listing that found nothing, saying so
// (and missing) when r's namespace does not exist (report j56a: a misspelt
// --kubernetes-namespace read as an empty namespace). When r cannot tell
// (the account may not get namespaces) it says no more than Where.
func whereEmpty(ctx context.Context, reg *Registry, r registry.Registry) (where string, missing bool) {
	if nc, ok := r.(namespaceChecker); ok {
		if exists, err := nc.NamespaceExists(ctx); err == nil && !exists {
			return fmt.Sprintf("the %s registry: namespace %q does not exist", reg.Name(), nc.Namespace()), true
		}
	}
	return reg.Where(r), false
}

// errNothing is ls's report of an empty listing (not an error of the command).
var errNothing = errors.New("no instances")

// NoInstance is `warren ls SERVICE...`'s answer when a service named on
// the command line was read and has no instance: the command exits 3
// (framework/warrencli), so a deploy script asking "is it up?" can tell
// "not up" from "cannot read the registry" (1) and a bad command line (2).
type NoInstance struct {
	Services []string // named and without an instance
	Where    string   // the registry read (reg.Where)
}

func (e NoInstance) Error() string {
	return fmt.Sprintf("no instance of %s in %s", strings.Join(e.Services, ", "), e.Where)
}

// ls prints the instances of services; a service discovery cannot read is
// reported on stderr and fails the command once the others are printed.
//
// named says the services were named on the command line: then one with
// no instance makes ls return NoInstance once everything is printed.
func ls(ctx context.Context, env Env, d registry.Discovery, services []string, named, asJSON bool) error {
	var rows []registry.Instance
	var failed, empty, skips []string
	for _, svc := range services {
		ev, skipped, err := current(ctx, d, svc)
		if err == nil && ev.Err != nil && len(ev.Instances) == 0 {
			err = ev.Err
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "warren ls: %s: %v\n", svc, err)
			failed = append(failed, svc)
			continue
		}
		var insts []registry.Instance
		for _, s := range ev.Instances {
			if inst, err := registry.ParseInstance(s); err == nil {
				insts = append(insts, inst)
			}
		}
		slices.SortFunc(insts, func(a, b registry.Instance) int { return strings.Compare(a.ID, b.ID) })
		if len(insts) == 0 {
			empty = append(empty, svc)
		}
		rows = append(rows, insts...)
		for _, sk := range skipped {
			skips = append(skips, fmt.Sprintf("warren ls: %s %s skipped (ready, not served to callers): %s", svc, printable(sk.id), printable(sk.reason)))
		}
	}
	if len(failed) == len(services) && len(services) > 0 {
		// Nothing read: no empty table that reads as "no instances".
		return fmt.Errorf("cannot read %s", strings.Join(failed, ", "))
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		for _, inst := range rows {
			if err := enc.Encode(inst); err != nil {
				return err
			}
		}
	} else {
		writeTable(env, rows)
	}
	// On stderr, as the other notes: stdout stays the instances (table or
	// JSON) a script reads.
	for _, l := range skips {
		fmt.Fprintln(env.Stderr, l)
	}
	if len(failed) > 0 {
		return fmt.Errorf("cannot read %s", strings.Join(failed, ", "))
	}
	if named && len(empty) > 0 {
		return NoInstance{Services: empty}
	}
	if len(rows) == 0 {
		return errNothing
	}
	return nil
}

func writeTable(env Env, rows []registry.Instance) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tINSTANCE\tENDPOINTS\tZONE\tWEIGHT\tVERSION\tREGISTERED\tMETRICS")
	for _, i := range rows {
		w := i.Weight
		if w == 0 {
			w = registry.DefaultWeight
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", printable(i.Name), printable(i.ID), printable(strings.Join(i.Endpoints, ",")),
			dash(i.Zone), w, dash(i.Version), age(env.now(), i.Metadata[app.RegisteredMetadataKey]), dash(i.Metadata[app.MetricsMetadataKey]))
	}
	tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintln(env.Stdout, "(no instances)")
	}
}

// age renders a registration time as "3m12s ago"; "-" when the record
// carries none.
func age(now time.Time, registered string) string {
	t, err := time.Parse(time.RFC3339, registered)
	if err != nil {
		return "-"
	}
	d := now.Sub(t).Truncate(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// printable escapes what a terminal would act on — control characters
// (ESC sequences, carriage returns, the title-setting OSC), other
// non-printing runes and invalid UTF-8 — as Go escapes (\x1b): a record's
// metadata is anyone's who can write to the registry, and printed raw it
// could erase rows, show fake ones and retitle the window (report j49b).
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
