package meshview

import (
	"maps"
	"slices"
	"time"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/registry"
)

// Snapshot is the whole view at one moment, as the page receives it.
type Snapshot struct {
	Registry string    `json:"registry,omitempty"`
	At       time.Time `json:"at"`
	// CatalogError is the last failure to list services, if any.
	CatalogError string    `json:"catalog_error,omitempty"`
	Services     []Service `json:"services"`
	// Events is the timeline, oldest first.
	Events []Event `json:"events"`
}

// Service is one watched service.
type Service struct {
	Name string `json:"name"`
	// Error is discovery's last error for the service, while it lasts.
	Error     string     `json:"error,omitempty"`
	Instances []Instance `json:"instances"`
}

// Instance is one instance: its record, what its probes found, and what
// its callers' clients think of it.
type Instance struct {
	ID        string            `json:"id"`
	Zone      string            `json:"zone,omitempty"`
	Weight    int               `json:"weight"`
	Version   string            `json:"version,omitempty"`
	Endpoints []string          `json:"endpoints"`
	Tags      []string          `json:"tags,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	// Registered is when the instance registered, from its record
	// (app.RegisteredMetadataKey); zero for records that do not carry it.
	Registered time.Time `json:"registered,omitzero"`
	// FirstSeen is when this view first saw the record.
	FirstSeen time.Time  `json:"first_seen"`
	Readiness *Readiness `json:"readiness,omitempty"`
	// Traffic is over the view's window; nil until two scrapes are in, or
	// when the instance publishes no metrics URL.
	Traffic      *Traffic `json:"traffic,omitempty"`
	MetricsError string   `json:"metrics_error,omitempty"`
	// Breakers are this instance's callers' breakers for it: caller
	// instance ID → "open" (ejected) or "half-open" (probing); closed
	// ones are left out.
	Breakers map[string]string `json:"breakers,omitempty"`
	// Differs says why the instance answers unlike its siblings (the
	// other instances of its service), "" when it does not: see
	// flagDiffering.
	Differs string `json:"differs,omitempty"`
}

// Readiness is the instance's /readyz answer.
type Readiness struct {
	Reachable bool                     `json:"reachable"`
	Status    int                      `json:"status,omitempty"`
	Ready     bool                     `json:"ready"`
	Checks    map[string]health.Result `json:"checks,omitempty"`
	Error     string                   `json:"error,omitempty"`
	At        time.Time                `json:"at"`
}

// Traffic is an instance's served requests and its calls to others.
type Traffic struct {
	RequestsPerSec float64 `json:"rps"`
	// ErrorRatio is the share of answers with a 5xx status.
	ErrorRatio float64 `json:"error_ratio"`
	// ClientErrorRatio is the share of answers with a 4xx status (gRPC:
	// a code for the request's own fault, such as NotFound).
	ClientErrorRatio float64 `json:"client_error_ratio"`
	// ShedRatio is the share of requests its load shedder refused (503
	// overloaded) of those it decided on; nil without a shedder.
	ShedRatio *float64      `json:"shed_ratio,omitempty"`
	P50ms     *float64      `json:"p50_ms,omitempty"`
	P99ms     *float64      `json:"p99_ms,omitempty"`
	Calls     []ClientCalls `json:"calls,omitempty"`

	requests float64 // answers in the window, for flagDiffering
}

// ClientCalls is one instance's client of one service.
type ClientCalls struct {
	Service        string  `json:"service"`
	AttemptsPerSec float64 `json:"attempts_per_sec"`
	RetriesPerSec  float64 `json:"retries_per_sec"`
	// RetryRatio is retries (attempts after failures) over attempts, and
	// HedgeRatio hedges (attempts beside a slow one) over attempts: apart,
	// so that hedging in a healthy mesh does not read as failures (report
	// j57b F9). Both spend the retry budget: their sum is the share of it
	// the client uses (the default budget allows 0.2).
	RetryRatio          float64 `json:"retry_ratio"`
	HedgeRatio          float64 `json:"hedge_ratio"`
	BudgetRefusedPerSec float64 `json:"budget_refused_per_sec"`
}

// Event kinds on the timeline.
const (
	KindRegister  = "register"
	KindUpdate    = "update"
	KindWithdraw  = "withdraw"
	KindLeaseLost = "lease lost"
	KindExpire    = "expire"
	KindEject     = "eject"
	KindRestore   = "restore"
	KindError     = "error"
	KindRecovered = "recovered"
)

// Event is one entry of the timeline.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Service  string    `json:"service"`
	Instance string    `json:"instance,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// Snapshot returns the current view.
func (v *View) Snapshot() Snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	snap := Snapshot{Registry: v.cfg.registryName, At: v.cfg.now(), CatalogError: v.catErr, Events: slices.Clone(v.events)}
	if snap.Events == nil {
		snap.Events = []Event{}
	}
	// Callers' breakers, by the called instance.
	breakers := map[string]map[string]map[string]string{} // service → instance → caller → state
	for _, s := range v.services {
		for callerID, in := range s.instances {
			if len(in.probe.samples) == 0 {
				continue
			}
			last := in.probe.samples[len(in.probe.samples)-1].s
			for svc, insts := range last.breakers {
				for id, st := range insts {
					if st == 0 {
						continue
					}
					if breakers[svc] == nil {
						breakers[svc] = map[string]map[string]string{}
					}
					if breakers[svc][id] == nil {
						breakers[svc][id] = map[string]string{}
					}
					breakers[svc][id][callerID] = breakerText(st)
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(v.services)) {
		s := v.services[name]
		out := Service{Name: name, Error: s.err, Instances: []Instance{}}
		for _, id := range slices.Sorted(maps.Keys(s.instances)) {
			in := s.instances[id]
			i := in.inst
			row := Instance{
				ID: i.ID, Zone: i.Zone, Weight: i.Weight, Version: i.Version,
				Endpoints: slices.Clone(i.Endpoints), Tags: slices.Clone(i.Tags), Metadata: maps.Clone(i.Metadata),
				FirstSeen: in.firstSeen, MetricsError: in.probe.metricsErr, Breakers: breakers[name][id],
			}
			if row.Weight == 0 {
				row.Weight = registry.DefaultWeight // what balancers use
			}
			if t, err := time.Parse(time.RFC3339, i.Metadata[app.RegisteredMetadataKey]); err == nil {
				row.Registered = t
			}
			if in.probe.checked {
				r := in.probe.ready
				row.Readiness = &r
			}
			row.Traffic = in.probe.traffic()
			out.Instances = append(out.Instances, row)
		}
		flagDiffering(out.Instances)
		snap.Services = append(snap.Services, out)
	}
	if snap.Services == nil {
		snap.Services = []Service{}
	}
	return snap
}
