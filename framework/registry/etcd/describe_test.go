package etcd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/registry"
)

// The lifecycle's phase=register line carries what Describe returns
// (docs/observability.md, Logs): on etcd registry=, registry_at= and key=,
// and key= is the key the record is really at, so an instance that gets no
// traffic shows in its own log which prefix it registered under. Guarded
// here as well as in framework/app, so a change to this package alone
// (the field dropped or renamed) fails this package's own tests.
func TestRegistry_DescribeNamesTheKeyTheRecordIsAt(t *testing.T) {
	prefix := testPrefix(t)
	r, _ := newTestRegistry(t, shared, prefix)
	var reg registry.Registry = r
	d, ok := reg.(app.RegistryDescriber)
	if !ok {
		t.Fatalf("%T is no app.RegistryDescriber: the register line would say nothing of where it registered", r)
	}
	ctx := testCtx(t)
	inst := testInstance(4250)
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}

	kv := d.Describe(inst)
	if len(kv)%2 != 0 {
		t.Fatalf("Describe = %v: an odd list shifts every later pair", kv)
	}
	fields := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			t.Fatalf("Describe key %d is %T, not a string: %v", i/2, kv[i], kv)
		}
		if _, dup := fields[k]; dup {
			t.Fatalf("Describe names %q twice: %v", k, kv)
		}
		fields[k] = fmt.Sprint(kv[i+1])
	}
	if fields["registry"] != "etcd" {
		t.Errorf("registry=%q, want etcd (Describe = %v)", fields["registry"], kv)
	}
	if want := strings.Join(shared.Endpoints(), ","); fields["registry_at"] != want {
		t.Errorf("registry_at=%q, want %q", fields["registry_at"], want)
	}
	key, ok := fields["key"]
	if !ok {
		t.Fatalf("Describe = %v: no key= field; the register line would not say which key the record is at", kv)
	}
	if !strings.HasPrefix(key, "/"+prefix+"/") {
		t.Errorf("key=%q does not start with the prefix /%s/", key, prefix)
	}
	resp, err := rawClient(t, shared).Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("key=%q holds no record: Describe names a key the instance is not at", key)
	}
	if got, err := registry.DecodeRecord(resp.Kvs[0].Value); err != nil || got.ID != inst.ID {
		t.Fatalf("the record at key=%q is %+v, %v; want instance %s", key, got, err, inst.ID)
	}
}
