package registry_test

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

type nopSettings struct{ v *string }

func (nopSettings) Validate() error { return nil }
func (nopSettings) Open(context.Context, registry.OpenOptions) (registry.Registry, error) {
	return nil, errors.New("not here")
}

func backendWithFlag(name, flagName string) registry.Backend {
	return registry.Backend{Name: name, Bind: func(fs *flag.FlagSet) registry.Settings {
		s := nopSettings{v: new(string)}
		fs.StringVar(s.v, flagName, "", "")
		return s
	}}
}

func TestBackends_LookupByNameListsTheOthersOnMiss(t *testing.T) {
	bs := registry.Backends{backendWithFlag("etcd", "etcd-x"), backendWithFlag("consul", "consul-x"), backendWithFlag("zk", "zk-x")}
	if b, err := bs.Lookup("consul"); err != nil || b.Name != "consul" {
		t.Fatalf("Lookup(consul) = %v, %v", b.Name, err)
	}
	_, err := bs.Lookup("kubernetes")
	if !errors.Is(err, registry.ErrUnknownBackend) || !strings.Contains(err.Error(), "etcd, consul or zk") {
		t.Fatalf("err = %v", err)
	}
}

func TestBackends_BindAllKeepsEachBackendInItsOwnNamespace(t *testing.T) {
	for name, tc := range map[string]struct {
		list registry.Backends
		ok   bool
	}{
		"own flags":          {registry.Backends{backendWithFlag("a", "a-x"), backendWithFlag("b", "b-x")}, true},
		"outside namespace":  {registry.Backends{backendWithFlag("a", "x")}, false},
		"another's prefix":   {registry.Backends{backendWithFlag("a", "a-x"), backendWithFlag("b", "a-y")}, false},
		"clash with core":    {registry.Backends{backendWithFlag("core", "core-flag")}, false},
		"duplicate backend":  {registry.Backends{backendWithFlag("a", "a-x"), backendWithFlag("a", "a-y")}, false},
		"invalid name":       {registry.Backends{backendWithFlag("A", "A-x")}, false},
		"no bind":            {registry.Backends{{Name: "a"}}, false},
		"bind gives nothing": {registry.Backends{{Name: "a", Bind: func(*flag.FlagSet) registry.Settings { return nil }}}, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.String("core-flag", "", "")
		got, err := tc.list.BindAll(fs)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", name, err, tc.ok)
			continue
		}
		if tc.ok {
			if err := fs.Parse([]string{"--a-x=1", "--b-x=2"}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if *got["a"].(nopSettings).v != "1" || *got["b"].(nopSettings).v != "2" {
				t.Errorf("%s: values did not reach the settings", name)
			}
		}
	}
}

func TestListFlag_SplitsTrimsAndReplaces(t *testing.T) {
	var l []string
	f := registry.ListFlag{P: &l}
	f.Set("a")
	f.Set(" b:1 , ,c:2 ")
	if strings.Join(l, "|") != "b:1|c:2" || f.String() != "b:1,c:2" {
		t.Fatalf("%q %q", l, f.String())
	}
}
