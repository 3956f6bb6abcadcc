package regcli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// docs/mesh-page.md: `warren page` serves on 127.0.0.1:7070 unless
// --page-listen says otherwise, probes every instance every 2 s
// (--probe-every) and spans rates over the last 10 s (--window). No test
// read these defaults: changing any of them in Page passed every test.
// --help prints the flag set's defaults, which are the values Page uses.
func TestPage_DefaultsAreTheDocumentedOnes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := Page(ctx, Env{Stdout: &out, Stderr: &out, Backends: registry.Backends{etcd.Backend()}}, []string{"--help"})
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	lines := strings.Split(out.String(), "\n")
	for flagName, want := range map[string]string{
		"-page-listen": "(default 127.0.0.1:7070)",
		"-probe-every": "(default 2s)",
		"-window":      "(default 10s)",
	} {
		found := false
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), flagName+" ") && i+1 < len(lines) {
				found = true
				if got := l + lines[i+1]; !strings.Contains(got, want) {
					t.Errorf("%s: %q, want %s", flagName, strings.TrimSpace(got), want)
				}
			}
		}
		if !found {
			t.Errorf("--help lists no %s:\n%s", flagName, out.String())
		}
	}
}
