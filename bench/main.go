// Command bench measures Warren's speed and memory targets and prints one
// table (and writes it as JSON). Every figure the issues set a goal for is
// a row here, measured in one run so ratios compare like with like.
//
//	go run ./bench                 # all suites
//	go run ./bench -only etcd      # suites whose name contains "etcd"
//	go run ./bench -json out.json  # where the JSON goes
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warren-mesh/warren/internal/etcdcluster"
)

// row is one measured figure. Goal is the target it is judged against, in
// words ("≤ 1.5× raw"); Pass is empty when the row has no goal.
type row struct {
	Suite  string  `json:"suite"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Goal   string  `json:"goal,omitempty"`
	Pass   string  `json:"pass,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// report collects rows from every suite.
type report struct {
	Started time.Time `json:"started"`
	Rows    []row     `json:"rows"`
}

func (r *report) add(x row) { r.Rows = append(r.Rows, x) }

// judged adds a row with a goal; ok says whether the goal was met.
func (r *report) judged(x row, ok bool) {
	x.Pass = "yes"
	if !ok {
		x.Pass = "NO"
	}
	r.add(x)
}

// suite is one group of measurements. Each owns everything it starts and
// stops it before returning.
type suite struct {
	name string
	run  func(ctx context.Context, r *report) error
}

// suites lists every measurement, in the order the table prints them.
var suites = []suite{
	{"clusters", benchClusters},
	{"consul-propagation", benchConsulPropagation},
	{"edge", benchEdge},
	{"etcd-propagation", benchEtcdPropagation},
	{"faults", benchFaults},
	{"grpc-path", benchGRPCPath},
	{"grpc-resolver", benchGRPCResolver},
	{"kubernetes-propagation", benchKubernetesPropagation},
	{"overload", benchOverload},
	{"request-path", benchRequestPath},
	{"scale", benchScale},
	{"svcgen", benchSvcgen},
}

func main() {
	etcdcluster.RunIfMember() // the clusters suite's etcd members are this program
	if target := os.Getenv(xdsClientEnv); target != "" {
		runXDSClient(target) // the edge suite's xDS client process
		return
	}
	if mode := os.Getenv(overloadServerEnv); mode != "" {
		serveOverload(mode) // the overload suite's server process
		return
	}
	os.Exit(run())
}

// run runs the suites the flags select and returns the exit status: 1 if
// any failed (its deferred calls, the CPU profile's stop, run first).
func run() int {
	only := flag.String("only", "", "run only suites whose name contains this")
	out := flag.String("json", "bench/results.json", "write the table as JSON here (empty: don't)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run here (go tool pprof reads it)")
	flag.Parse()
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 2
		}
		defer stopProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	rep := &report{Started: time.Now()}
	failed := false
	for _, s := range suites {
		if *only != "" && !strings.Contains(s.name, *only) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", s.name)
		start := time.Now()
		if err := s.run(ctx, rep); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s failed: %v\n", s.name, err)
			failed = true
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s done in %s\n", s.name, time.Since(start).Round(time.Millisecond))
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUITE\tMETRIC\tVALUE\tUNIT\tGOAL\tMET\tNOTE")
	for _, x := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Suite, x.Metric, formatValue(x.Value), x.Unit, x.Goal, x.Pass, x.Note)
	}
	tw.Flush()

	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: write %s: %v\n", *out, err)
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// startCPUProfile profiles the process into path until the returned stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func formatValue(v float64) string {
	switch {
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
