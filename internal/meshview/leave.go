package meshview

import (
	"strings"
	"time"
)

// Check names a Warren service's /readyz reports (framework/app).
const (
	checkRegistered = "registered"
	checkDraining   = "draining"
)

// leaveEvent is how the record of instance id left discovery at leftAt,
// judged by rd, the first /readyz that ended after:
//
//   - no answer: expire (the process died or hung, and its lease or
//     check ran out);
//   - draining, or a registration the process withdrew itself (the
//     watchdog): withdraw;
//   - answering and neither: lease lost — the registry dropped a record
//     the process did not give up (its lease lapsed during an etcd hang,
//     an agent restart); it re-registers on its own (report j57b F6: such
//     instances showed as withdraw). Its `registered` check says
//     "retrying since …" or, until the registrar notices, still ok;
//   - an answer without Warren's checks (another kind of process): withdraw,
//     as nothing tells otherwise.
func leaveEvent(service, id string, leftAt time.Time, rd Readiness) Event {
	e := Event{Time: leftAt, Kind: KindWithdraw, Service: service, Instance: id, Detail: "left discovery while answering"}
	if !rd.Reachable {
		e.Kind, e.Detail = KindExpire, "record expired after the process stopped answering"
		if rd.Error != "" {
			e.Detail += " (" + rd.Error + ")"
		}
		return e
	}
	reg, warren := rd.Checks[checkRegistered]
	if !warren {
		return e
	}
	if d, ok := rd.Checks[checkDraining]; ok && !d.OK {
		e.Detail += " (draining: shutting down)"
		return e
	}
	if !reg.OK && strings.HasPrefix(reg.Detail, "withdrawn") {
		e.Detail += " (registered: " + reg.Detail + ")"
		return e
	}
	e.Kind = KindLeaseLost
	if reg.OK {
		e.Detail = "the registry dropped its record while it answered and still counted itself registered (a lapsed lease or check); it re-registers on its own"
	} else {
		e.Detail = "the registry dropped its record while it answered (registered: " + reg.Detail + "); it re-registers on its own"
	}
	return e
}
