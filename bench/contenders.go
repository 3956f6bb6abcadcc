package main

import (
	"context"
	"fmt"
	"strings"
)

// contender is one client a request-path suite (HTTP, gRPC) measures.
type contender struct {
	name   string
	call   func(context.Context, benchReq) (benchResp, error)
	res    loadResult
	rounds []loadResult
}

// measureRounds runs reqPathRounds rounds; in each every contender, in an
// order that rotates from round to round, warms up and then runs one
// measured round, so drift on the shared cores hits them all alike.
func measureRounds(ctx context.Context, cs []*contender) error {
	text := strings.Repeat("x", reqPathPayload)
	for round := range reqPathRounds {
		for i := range cs {
			c := cs[(round+i)%len(cs)]
			if _, err := runLoad(ctx, c.call, text, reqPathWarmup); err != nil {
				return fmt.Errorf("%s warm-up: %w", c.name, err)
			}
			r, err := runLoad(ctx, c.call, text, reqPathRound)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			c.res.add(r)
			c.rounds = append(c.rounds, r)
		}
	}
	return nil
}

// addContenderRows reports each contender's throughput, p99 and CPU per
// call; the first row carries note.
func addContenderRows(rep *report, suite, note string, cs []*contender) {
	for i, c := range cs {
		n := ""
		if i == 0 {
			n = note
		}
		rep.add(row{Suite: suite, Metric: c.name + " throughput", Value: c.res.rate(), Unit: "req/s", Note: n})
		rep.add(row{Suite: suite, Metric: c.name + " p99", Value: ms(percentile(c.res.lat, 99)), Unit: "ms"})
		rep.add(row{Suite: suite, Metric: c.name + " CPU per call", Value: c.res.cpuPerCall(), Unit: "µs", Note: "client + server, one process"})
	}
}

// callErrors fails a suite any of whose calls failed.
func callErrors(cs []*contender) error {
	for _, c := range cs {
		if c.res.errs > 0 {
			return fmt.Errorf("%s: %d call errors", c.name, c.res.errs)
		}
	}
	return nil
}
