package balancer

import (
	"testing"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/registry"
)

// A target holds only its instance string until someone asks for the
// record: at 10k instances the parsed records (metadata maps above all)
// were megabytes that P2C never reads.
func TestTarget_RecordParsedOnFirstUseOnly(t *testing.T) {
	id := registry.Instance{ID: "a", Name: "svc", Endpoints: []string{"http://127.0.0.1:1"}, Zone: "z", Metadata: map[string]string{"region": "r"}}.String()
	tg, err := NewTarget(id, endpoint.Nop)
	if err != nil {
		t.Fatal(err)
	}
	if tg.inst.Load() != nil {
		t.Fatal("the record was parsed and kept before anyone asked for it")
	}
	if got := tg.Instance(); got.Zone != "z" || got.Metadata["region"] != "r" || got.ID != "a" {
		t.Fatalf("Instance() = %+v", got)
	}
	if tg.inst.Load() == nil {
		t.Fatal("the parsed record was not kept for the next caller")
	}
	if _, err := NewTarget("http://h:1/?weight=-1", endpoint.Nop); err == nil {
		t.Fatal("NewTarget took an instance string that does not parse")
	}
}
