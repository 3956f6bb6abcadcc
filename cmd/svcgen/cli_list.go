package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
)

func (c *cli) list(args []string) error {
	fs, rootFlag := c.flags("list", "[flags]", "Lists every service under services/ with its methods and routes.")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("list takes no arguments; got %q", pos)
	}
	r, err := c.repo(*rootFlag)
	if err != nil {
		return err
	}
	dirs := serviceDirs(r.root)
	if len(dirs) == 0 {
		fmt.Fprintf(c.stdout, "no services yet; create one with `%s new NAME`\n", c.self(r))
		return nil
	}
	var probs gen.Problems
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, dir := range dirs {
		name := filepath.Base(dir)
		files, err := readGo(dir)
		if err != nil {
			return err
		}
		svc, err := gen.Load("services/"+name, name, r.module, files, nil)
		var ps gen.Problems
		if errors.As(err, &ps) {
			probs = append(probs, ps...)
			fmt.Fprintf(tw, "%s\t(services/%s: has problems, see below)\n", name, name)
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\tservices/%s\n", name, name)
		for _, m := range svc.Methods {
			var marks []string // how the generated client retries it
			for _, mk := range []struct {
				on   bool
				name string
			}{{m.Idempotent, "idempotent"}, {m.Keyed, "keyed"}, {m.NoRetry, "noretry"}} {
				if mk.on {
					marks = append(marks, mk.name)
				}
			}
			routes := svc.Routes(m.Name)
			// A GET route is idempotent in every generated client (HTTP's
			// client.NewEndpoint, gRPC's grpcclient.Idempotent()) without
			// the annotation; a keyed or noretry mark overrides it.
			if len(marks) == 0 && strings.HasPrefix(routes["http"], "GET ") {
				marks = append(marks, "idempotent (GET)")
			}
			extra := strings.Join(marks, ",")
			var rs []string
			for _, t := range slices.Sorted(mapKeys(routes)) {
				rs = append(rs, routes[t])
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.Name, strings.Join(rs, ", "), m.Req+" → "+m.Resp, extra)
		}
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		fmt.Fprint(c.stdout, strings.TrimRight(l, " \n")+strings.Repeat("\n", strings.Count(l, "\n")))
	}
	if len(probs) > 0 {
		return probs
	}
	return nil
}
