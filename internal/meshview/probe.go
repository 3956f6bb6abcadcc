package meshview

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/registry"
)

// probeResult is what an instance's probes found; View.mu guards it.
type probeResult struct {
	checked   bool // at least one probe finished
	reachable bool // the last /readyz got an answer
	ready     Readiness
	// readyzDone is when the last /readyz ended, answered or not.
	readyzDone time.Time
	// metricsErr is the last scrape's failure, "" after a good one.
	metricsErr string
	// samples are the scrapes within the window (and one before it), oldest first.
	samples []timedSample
}

type timedSample struct {
	at time.Time
	s  sample
}

// maxBody bounds what a probe reads from an instance.
const maxBody = 4 << 20

// probeLoop reads the instance's /readyz and /metrics every probeEvery
// until its record leaves discovery (then settles how it left) or ctx
// ends (the view stopped).
func (v *View) probeLoop(ctx context.Context, service string, in *instanceState) {
	// Spread the probes of many instances over the interval.
	first := time.Duration(rand.Int64N(int64(v.cfg.probeEvery)/4 + 1))
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-in.left:
			v.settleLeave(ctx, service, in)
			return
		case <-t.C:
		}
		v.probeOnce(ctx, in)
		t.Reset(v.cfg.probeEvery)
	}
}

// settleLeave adds the event of the instance's record leaving discovery:
// withdraw or lease lost if a /readyz that ended after the record left got
// an answer (the process was alive: it let go of its record, 503 through
// the grace period, or the registry dropped it; leaveEvent tells which),
// expire if it got none (the process had died or hung and its lease or
// check ran out). The probe in flight when
// the record left counts if it ended after; otherwise one more /readyz is
// sent now, so a verdict takes at most one probe timeout.
func (v *View) settleLeave(ctx context.Context, service string, in *instanceState) {
	v.mu.Lock()
	leftAt, inst := in.leftAt, in.inst
	rd, done := in.probe.ready, in.probe.readyzDone
	v.mu.Unlock()
	if !done.After(leftAt) {
		rd = Readiness{}
		v.probeReadyz(ctx, inst, &rd)
	}
	if ctx.Err() != nil {
		return // the view stopped: no verdict
	}
	v.emit([]Event{leaveEvent(service, inst.ID, leftAt, rd)})
}

// probeReadyz asks inst's /readyz into rd, or notes it has none to ask.
func (v *View) probeReadyz(ctx context.Context, inst registry.Instance, rd *Readiness) {
	if ep, ok := inst.Endpoint("http", "https"); ok {
		v.readyz(ctx, ep, rd)
		return
	}
	rd.Error = "no HTTP endpoint to probe"
}

func (v *View) probeOnce(ctx context.Context, in *instanceState) {
	v.mu.Lock()
	inst := in.inst
	v.mu.Unlock()

	rd := Readiness{At: v.cfg.now()}
	v.probeReadyz(ctx, inst, &rd)
	readyzDone := v.cfg.now()
	var smp sample
	metricsErr := ""
	select {
	case <-in.left:
		// The record went: only the /readyz outcome matters now, and
		// settleLeave should not wait for a scrape.
		metricsErr = "left discovery"
	default:
		if u := inst.Metadata[app.MetricsMetadataKey]; u != "" {
			var err error
			if err = scrapeable(inst, u); err == nil {
				smp, err = v.scrape(ctx, u)
			}
			if err != nil {
				metricsErr = err.Error()
			}
		} else {
			metricsErr = "no metrics URL published (a service started with --debug-listen publishes one; the kubernetes registry publishes none: scrape the Pods by their annotations)"
		}
	}
	if ctx.Err() != nil {
		return // the view stopped while we probed: the result means nothing now
	}
	now := v.cfg.now()
	var events []Event
	v.mu.Lock()
	p := &in.probe
	p.checked, p.reachable, p.ready, p.readyzDone, p.metricsErr = true, rd.Reachable, rd, readyzDone, metricsErr
	if metricsErr == "" {
		if n := len(p.samples); n > 0 {
			events = breakerEvents(now, inst.ID, p.samples[n-1].s, smp)
		}
		p.samples = append(p.samples, timedSample{now, smp})
		// Keep one sample older than the window, the base of the rates.
		for len(p.samples) > 2 && now.Sub(p.samples[1].at) > v.cfg.window {
			p.samples = p.samples[1:]
		}
	}
	v.mu.Unlock()
	v.emit(events)
}

func (v *View) readyz(ctx context.Context, endpoint string, rd *Readiness) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/readyz", nil)
	if err != nil {
		rd.Error = err.Error()
		return
	}
	resp, err := v.cfg.client.Do(req)
	if err != nil {
		rd.Error = err.Error()
		return
	}
	defer resp.Body.Close()
	rd.Reachable, rd.Status, rd.Ready = true, resp.StatusCode, resp.StatusCode == http.StatusOK
	var rep health.Report
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&rep); err == nil {
		rd.Checks = rep.Checks
	}
}

// scrapeable checks a metrics URL a record published before the page
// fetches it: http(s), at a host of one of the instance's own endpoints,
// path /metrics, nothing else. Any record writer chose that URL, and the
// page fetched it every 2 s with the operator's client certificate — a
// GET to any host, path and query (report j49b).
func scrapeable(inst registry.Instance, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		u.Path != "/metrics" || u.Port() == "" {
		return fmt.Errorf("metrics URL %q not scraped: want http(s)://HOST:PORT/metrics and nothing else", raw)
	}
	for _, ep := range inst.Endpoints {
		if _, host, _, err := registry.ParseEndpoint(ep); err == nil && host == u.Hostname() {
			return nil
		}
	}
	return fmt.Errorf("metrics URL %q not scraped: its host is none of the instance's endpoints' hosts", raw)
}

func (v *View) scrape(ctx context.Context, url string) (sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return sample{}, err
	}
	resp, err := v.cfg.client.Do(req)
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sample{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, maxBody))
}

// breakerEvents compares one caller's breakers between two scrapes: a
// breaker that opened is an ejection, one that closed a restore.
func breakerEvents(now time.Time, caller string, old, cur sample) []Event {
	var out []Event
	for svc, insts := range cur.breakers {
		for id, st := range insts {
			was := old.breakers[svc][id]
			switch {
			case st == 1 && was != 1:
				out = append(out, Event{Time: now, Kind: KindEject, Service: svc, Instance: id, Detail: "ejected by " + caller + "'s outlier detection"})
			case st == 0 && was != 0:
				out = append(out, Event{Time: now, Kind: KindRestore, Service: svc, Instance: id, Detail: "back in " + caller + "'s rotation"})
			}
		}
	}
	return out
}

// traffic is the rates over the last window: from the oldest sample kept
// to the newest.
func (p *probeResult) traffic() *Traffic {
	n := len(p.samples)
	if n < 2 || p.metricsErr != "" {
		return nil
	}
	old, cur := p.samples[0], p.samples[n-1]
	t, ok := traffic(old.s, cur.s, cur.at.Sub(old.at).Seconds())
	if !ok {
		return nil
	}
	return &t
}
