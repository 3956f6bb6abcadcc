package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
)

// The scale rows judge Warren's sync against go-kit's with a factory that
// does nothing, so go-kit's figure is that of an endpointer whose factory
// never looks at what its instancer read. A factory that builds a callable
// endpoint must find the instance's address in it: Warren's factory gets
// an instance string its instancer already decoded and checked, go-kit's
// the record as stored, JSON. The rows below give both the same job —
// read each instance's HTTP address — each from what its own instancer
// hands it, and are reported beside the judged rows, not instead of them.

var errNoAddress = errors.New("no http endpoint")

// warrenAddrFactory reads the address from Warren's instance string, as
// Warren's client does (registry.ParseInstance, then the endpoint).
func warrenAddrFactory(instance string) (endpoint.Endpoint, io.Closer, error) {
	inst, err := registry.ParseInstance(instance)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := inst.Endpoint("http"); !ok {
		return nil, nil, errNoAddress
	}
	return endpoint.Nop, nil, nil
}

// kitAddrFactory reads the address from the JSON record, as a go-kit
// factory over the records Warren's registrar writes would: only the
// field it needs, with encoding/json.
func kitAddrFactory(value string) (endpoint.Endpoint, io.Closer, error) {
	var rec struct {
		Instance struct {
			Endpoints []string `json:"endpoints"`
		} `json:"instance"`
	}
	if err := json.Unmarshal([]byte(value), &rec); err != nil {
		return nil, nil, err
	}
	if len(rec.Instance.Endpoints) == 0 {
		return nil, nil, errNoAddress
	}
	return endpoint.Nop, nil, nil
}

func warrenAddrScale(ctx context.Context, srv *embedetcd.Server, recs *scaleRecords) (scaleRound, error) {
	return warrenSync(ctx, srv, recs, nil, warrenAddrFactory)
}

func kitAddrScale(ctx context.Context, srv *embedetcd.Server, recs *scaleRecords) (scaleRound, error) {
	return kitSync(ctx, srv, recs, nil, kitAddrFactory)
}

// reportAddrScale adds the rows of the syncs whose factories read each
// address: triple gives a system's 1k / 10k / 100k figures; w10 and k10
// are Warren's and go-kit's at 10k.
func reportAddrScale(rep *report, triple func(sys string) string, w10, k10 float64) {
	const suite = "scale"
	rep.add(row{Suite: suite, Metric: "full sync, factory reads each address, 1k / 10k / 100k (warren)", Unit: "ms", Note: triple("warren-addr")})
	rep.add(row{Suite: suite, Metric: "full sync, factory reads each address, 1k / 10k / 100k (go-kit)", Unit: "ms", Note: triple("go-kit-addr")})
	rep.add(row{Suite: suite, Metric: "10k: full sync, factory reads each address, warren/go-kit", Value: w10 / k10, Unit: "×",
		Note: fmt.Sprintf("%.2f / %.2f ms; median of %d rounds; Warren's factory parses its instance string, go-kit's decodes the JSON record (encoding/json); not judged: the judged row keeps the no-op factory", w10, k10, scaleRounds)})
}
