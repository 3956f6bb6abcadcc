package endpointer

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// New panics at once, naming what is nil, instead of with a nil
// dereference later on its goroutine or the first build; a nil sd.Factory
// with WithInstanceFactory is fine.
func TestNew_NilArgumentsPanicNamingThem(t *testing.T) {
	src := sd.FixedInstancer{inst(1).String()}
	f := newRecorder().factory
	cases := map[string]struct {
		build func()
		want  string
	}{
		"nil instancer":  {func() { New(nil, f) }, "nil sd.Instancer"},
		"nil factory":    {func() { New(src, nil) }, "nil sd.Factory"},
		"nil option":     {func() { New(src, f, nil) }, "option 0 is nil"},
		"nil both":       {func() { New(nil, nil) }, "nil sd.Instancer"},
		"typed nil":      {func() { New((*registry.Failover)(nil), f) }, "nil sd.Instancer (a nil *registry.Failover)"},
		"nil f, nil opt": {func() { New(src, nil, WithInstanceFactory(nil)) }, "nil sd.Factory"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, "endpointer.New: ") {
					t.Fatalf("panic %q; want one naming %q", msg, c.want)
				}
			}()
			c.build()
		})
	}

	ifactory := func(registry.Instance) (endpoint.Endpoint, io.Closer, error) {
		return endpoint.Nop, nil, nil
	}
	e := New(src, nil, WithInstanceFactory(ifactory))
	defer e.Close()
	select {
	case <-e.Ready(): // FixedInstancer answers inside Register
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from discovery within 10s")
	}
	if n := len(e.Targets()); n != 1 {
		t.Fatalf("%d targets with an instance factory and no sd.Factory; want 1", n)
	}
}
